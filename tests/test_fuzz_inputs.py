"""Hostile ABC tunes, text files and checkpoint files: each works or raises GenseqError, within a time bound.

tests/tokenizers/test_midi_fuzz.py does the same for MIDI files.
"""

from __future__ import annotations

import io
import random
import resource
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genseq.corpora.sources import find_documents
from genseq.errors import GenseqError, InputError
from genseq.lm.checkpoint import FORMAT, VERSION, load_checkpoint
from genseq.music import abc as abc_module
from genseq.music.abc import MAX_TUNE_CHARS, abc_to_midi
from genseq.tokenizers import CharTokenizer

ABC_ALPHABET = "XTMLKQV:0123456789/ ABCDEFGabcdefgz,'^_=|:[]()<>{}-.~!+\"%\n"
FUZZ_RENDER_SECONDS = 3.0
"""The render cap while fuzzing (lowered from MAX_RENDER_SECONDS so hostile tunes cost less time)."""
SLACK_SECONDS = 2.0
REAL_TUNES = [
    "X:1\nT:Reel\nM:4/4\nL:1/8\nK:D\n|:d2fd Adfd|e2ge cege|d2fd Adfd|1 edce d4:|2 edce d2z2|\n",
    "X:2\nT:Jig\nM:6/8\nL:1/8\nK:G\nD|:GAG BAG|dBG AGE|DGG BAG|AGA BGE:|\n|:(3ABc d e2d|g2e dBG|ABA BGE|DEG G2:|\n",
    "X:3\nT:Waltz\nM:3/4\nL:1/4\nQ:1/4=120\nK:F\nA>B c|d2 c|B A G|F3|[FA] [Gc] [Ad]|c2 z|\n",
]
HOSTILE_TUNES = {
    "huge meter": "X:1\nM:99999/1\nL:1/8\nK:C\n" + "C" * 2000,
    "hundreds of repeat endings": "X:1\nL:1/8\nK:C\n" + "|:CD|1 E:|2 F:|" * 600,
    "meter change every bar": "X:1\nL:1/8\nK:C\n" + "M:7/8\nCDEFGAB|\nM:3/4\nCDEFGA|\n" * 400,
    "huge note length": "X:1\nL:1/8\nK:C\nC99999999|D",
    "tiny unit length": "X:1\nL:1/99999999\nK:C\nCDEF|",
    "tempo zero": "X:1\nQ:0\nL:1/8\nK:C\nCDEF",
    "nested tuplets": "X:1\nL:1/8\nK:C\n" + "(3(3(3(3CCC" * 1000,
    "one giant chord": "X:1\nL:1/8\nK:C\n[" + "CDEFGABcdefgab" * 100 + "]",
    "thousands of slurs": "X:1\nL:1/8\nK:C\n" + "(" * 5000 + "C" + ")" * 5000,
    "eight hundred voices": "X:1\nL:1/8\nK:C\n" + "".join(f"V:{i}\nCDEF|\n" for i in range(800)),
    "tied for ever": "X:1\nL:1/8\nK:C\n" + "C-" * 6000 + "C",
    "stacked accidentals": "X:1\nL:1/8\nK:C\n" + "^^^^^^^^^^^^C" * 1000,
    "longest allowed tune": "X:1\nL:1/8\nK:C\n" + "CDEF GABc|" * ((MAX_TUNE_CHARS - 20) // 10),
}
STATS: dict[str, list[tuple[float, int]]] = {}
"""Per input kind: (seconds, peak-RSS growth in KiB) of every input tried, printed by the summary test."""


def within_bound(kind: str, seconds_allowed: float, action) -> bool:
    """Run `action`; True if it worked, False on GenseqError; anything else, or running too long, fails."""
    memory_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    try:
        action()
        worked = True
    except GenseqError as err:
        assert "\n" not in str(err), str(err)
        worked = False
    seconds = time.perf_counter() - started
    STATS.setdefault(kind, []).append((seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - memory_before))
    assert seconds < seconds_allowed, f"{kind}: {seconds:.2f} s"
    return worked


@pytest.fixture
def short_render_cap(monkeypatch):
    monkeypatch.setattr(abc_module, "MAX_RENDER_SECONDS", FUZZ_RENDER_SECONDS)


# -- ABC -------------------------------------------------------------------------------------------


def mutate_abc(tune: str, rng: random.Random) -> str:
    """One hostile variant of a real tune."""
    text = list(tune)
    kind = rng.randrange(6)
    if kind == 0:
        return tune[: rng.randrange(len(tune))]
    if kind == 1:
        for _ in range(rng.randint(1, 10)):
            text[rng.randrange(len(text))] = rng.choice(ABC_ALPHABET)
    elif kind == 2:
        field = rng.choice(["M:", "L:", "Q:", "K:"])
        value = rng.choice(["0", "1/0", "0/0", "99999/1", "1/99999", "-3/4", "C|", "", "7/" + "9" * 30, "none"])
        return tune.replace("K:", f"{field}{value}\nK:", 1)
    elif kind == 3:
        start = rng.randrange(len(tune))
        piece = tune[start: start + rng.randint(1, 40)]
        return tune + piece * rng.randint(1, 200)
    elif kind == 4:
        position = rng.randrange(len(text))
        text[position:position] = rng.choices(ABC_ALPHABET + "\x00\u00e9\U0001f3b5", k=rng.randint(1, 60))
    else:
        del text[rng.randrange(len(text)):][: rng.randint(1, 20)]
    return "".join(text)


@pytest.mark.slow
def test_hostile_abc_tunes_render_or_raise_within_the_cap(short_render_cap):
    bound = FUZZ_RENDER_SECONDS + SLACK_SECONDS
    outcomes = {name: within_bound("abc hostile", bound, lambda t=tune: abc_to_midi(t))
                for name, tune in HOSTILE_TUNES.items()}
    assert not outcomes["huge meter"] and not outcomes["hundreds of repeat endings"]
    assert abc_to_midi(REAL_TUNES[0]).instruments, "a real tune still renders after tunes were cut off"
    time.sleep(0.2)  # an interrupt withdrawn by the cap must never surface later


@pytest.mark.slow
def test_seeded_abc_mutations_render_or_raise_within_the_cap(short_render_cap):
    rng = random.Random(20261125)
    bound = FUZZ_RENDER_SECONDS + SLACK_SECONDS
    results = [within_bound("abc mutation", bound, lambda: abc_to_midi(mutate_abc(rng.choice(REAL_TUNES), rng)))
               for _ in range(30)]
    assert 0 < sum(results) < len(results)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["", "X:1\nL:1/8\nK:C\n", "X:1\nM:6/8\nL:1/16\nK:Am\n"]),
       st.text(alphabet=ABC_ALPHABET, max_size=300))
def test_arbitrary_abc_text_renders_or_raises(short_render_cap, header, body):
    within_bound("abc hypothesis", FUZZ_RENDER_SECONDS + SLACK_SECONDS, lambda: abc_to_midi(header + body))


def test_the_render_cap_cuts_off_a_tune_music21_would_never_finish(monkeypatch):
    started = time.perf_counter()
    with pytest.raises(InputError, match="the meter 99999/1 of this ABC tune is beyond 64/64"):
        abc_to_midi(HOSTILE_TUNES["huge meter"])  # refused before music21 sees it
    assert time.perf_counter() - started < SLACK_SECONDS
    monkeypatch.setattr(abc_module, "MAX_METER", 10**6)  # let it through: the time cap still cuts it off
    monkeypatch.setattr(abc_module, "MAX_RENDER_SECONDS", 1.0)
    started = time.perf_counter()
    with pytest.raises(InputError, match="took longer than 1 s"):
        abc_to_midi(HOSTILE_TUNES["huge meter"])
    assert time.perf_counter() - started < 1.0 + SLACK_SECONDS


# -- text files ------------------------------------------------------------------------------------


def read_text_source(path: Path) -> None:
    """What training does with a text source: find the documents, fit the characters, encode."""
    documents = find_documents(str(path), "char")
    tokenizer = CharTokenizer.build(documents)
    for doc in documents:
        for piece in doc.pieces():
            assert (tokenizer.encode_array(piece) != tokenizer.unknown).all()


def hostile_text(rng: random.Random) -> bytes:
    kind = rng.randrange(7)
    if kind == 0:
        return rng.randbytes(rng.randint(1, 5000))
    if kind == 1:  # valid UTF-8 with one bad byte somewhere, possibly in a long run
        text = "".join(rng.choice("abc é€\U0001f3b5\n") for _ in range(rng.randint(1, 3000))).encode()
        cut = rng.randrange(len(text) + 1)
        return text[:cut] + bytes([rng.choice([0x80, 0xC3, 0xE2, 0xF0, 0xFF])]) + text[cut:]
    if kind == 2:
        return b"\x00" * rng.randint(1, 100_000)
    if kind == 3:  # a multi-byte character cut at the end of the file
        return "é€\U0001f3b5".encode()[: rng.choice([1, 3, 4, 6, 8])]
    if kind == 4:
        return "\u2028\u0085\r\x0b\x0c\ufeff\ud7ff\U0010ffff".encode() * rng.randint(1, 1000)
    if kind == 5:  # a line of several million characters without a line break
        return rng.choice([b"a", "é".encode(), b"\x00"]) * rng.randint(1 << 20, 3 << 20)
    return "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(rng.randint(1, 2000))).encode("utf-8", "replace")


@pytest.mark.slow
def test_hostile_text_files_are_read_or_raise_within_a_bound(tmp_path):
    rng = random.Random(7)
    results = []
    for i in range(120):
        path = tmp_path / f"input-{i}.txt"
        path.write_bytes(hostile_text(rng))
        results.append(within_bound("text mutation", 10.0, lambda p=path: read_text_source(p)))
    assert 0 < sum(results) < len(results)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_as_a_text_file_are_read_or_raise(tmp_path, data):
    path = tmp_path / "input.txt"
    path.write_bytes(data)
    within_bound("text hypothesis", 5.0, lambda: read_text_source(path))


def test_a_huge_single_line_file_reads_in_bounded_memory(tmp_path):
    path = tmp_path / "line.txt"
    with open(path, "wb") as handle:
        for _ in range(64):
            handle.write("é".encode() * (1 << 19))  # 64 MiB, one line, two-byte characters
    tracemalloc.start()
    try:
        within_bound("text huge line", 60.0, lambda: read_text_source(path))
        peak_mib = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    print(f"\n64 MiB single line: peak traced memory {peak_mib:.0f} MiB", end="")
    assert peak_mib < 256, "reading a 64 MiB line held too much of it in memory at once"


# -- checkpoint files --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint_bytes() -> bytes:
    """A real, small checkpoint as `genseq train` writes it (weights, optimizer, tokenizer, progress)."""
    from genseq.lm.config import ModelConfig, TrainConfig, to_dict
    from genseq.lm.model import LSTMLanguageModel

    model = LSTMLanguageModel(ModelConfig(vocab_size=12, hidden_size=16))
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.zeros(2, 3, dtype=torch.long))[0].sum().backward()
    optimizer.step()
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, "model_config": to_dict(model.config),
                "train_config": to_dict(TrainConfig(steps=1)), "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "progress": {"step": 1}, "rng": {"torch": torch.get_rng_state()},
                "tokenizer": {"kind": "char", "chars": "abcdefghi"}, "data": {}}, buffer)
    return buffer.getvalue()


def mutate_checkpoint(data: bytes, rng: random.Random) -> bytes:
    kind = rng.randrange(5)
    if kind == 0:
        return data[: rng.randrange(len(data))]
    buffer = bytearray(data)
    if kind == 1:
        for _ in range(rng.randint(1, 32)):
            buffer[rng.randrange(len(buffer))] ^= 1 << rng.randrange(8)
    elif kind == 2:
        start = rng.randrange(len(buffer))
        buffer[start: start + rng.randint(1, 4096)] = rng.randbytes(rng.randint(1, 4096))
    elif kind == 3:  # damage inside the pickle (the first entry of the archive)
        for _ in range(rng.randint(1, 4)):
            buffer[rng.randrange(64, min(len(buffer), 2048))] = rng.randrange(256)
    else:
        return rng.randbytes(rng.randint(0, 20_000))
    return bytes(buffer)


def load_mutated(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    load_checkpoint(path)


@pytest.mark.slow
def test_damaged_checkpoints_load_or_raise_within_a_bound(tmp_path, checkpoint_bytes):
    load_mutated(tmp_path / "intact.pt", checkpoint_bytes)
    rng = random.Random(11)
    results = [within_bound("checkpoint mutation", 5.0, lambda: load_mutated(tmp_path / "c.pt", mutate_checkpoint(
        checkpoint_bytes, rng))) for _ in range(400)]
    assert sum(results) < len(results)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_as_a_checkpoint_raise(tmp_path, data):
    assert not within_bound("checkpoint hypothesis", 5.0, lambda: load_mutated(tmp_path / "c.pt", data))


def test_a_checkpoint_with_a_truncated_tensor_is_refused(tmp_path, checkpoint_bytes):
    for keep in np.linspace(0.05, 0.999, 25):
        assert not within_bound("checkpoint truncation", 5.0,
                                lambda k=keep: load_mutated(tmp_path / "t.pt", checkpoint_bytes[: int(k * len(
                                    checkpoint_bytes))]))


def test_zz_fuzz_summary():
    """Prints what the fuzz tests above tried (run with -s to see it); runs last in this file."""
    for kind, stats in sorted(STATS.items()):
        seconds = max(s for s, _ in stats)
        growth = max(g for _, g in stats) / 1024
        print(f"\n{kind:24} {len(stats):4} inputs, longest {seconds:.3f} s, peak RSS growth {growth:.0f} MiB", end="")
    print()
