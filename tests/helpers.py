"""What the tests share beside their fixtures (tests/conftest.py): the CLI as a user runs it, generated text, real
MIDI data, sampler checks, device marks and the studio as a process. Imported one way: `from tests.helpers import ...`.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import socket
import subprocess
import sys
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import mido
import pretty_midi
import pytest
import torch

from genseq.lm.config import ModelConfig
from genseq.lm.model import LSTMLanguageModel
from genseq.tokenizers import MidiTokenizer, Tokenizer

ROOT = Path(__file__).resolve().parents[1]
"""The checkout: its examples/ and tests/data/ hold real files the tests read."""

# The command line


def run_cli(*args: str, cwd: Path | None = None, process: bool = False) -> subprocess.CompletedProcess:
    """Run `genseq ARGS` as a user would, capturing its exit status and output.

    In this process through `genseq.cli.main`, the entry point `python -m genseq` runs, with argv, the working
    folder and stdout/stderr swapped in (a new Python spends 2-3 s importing torch and music21 before the
    command starts). This is typer's `CliRunner` isolation around the real entry point: `CliRunner.invoke` calls
    the click command itself and would skip `main`'s one-line errors and exit statuses, which these tests check.
    `process=True` runs a real `python -m genseq` where the process itself is what is tested: its interpreter
    teardown, signals, a terminal.
    """
    if process:
        return subprocess.run([sys.executable, "-m", "genseq", *args], capture_output=True, text=True, cwd=cwd,
                              env={**os.environ}, timeout=300)
    from genseq import cli

    out, err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8"), io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    argv, folder = sys.argv, os.getcwd()
    sys.argv = ["genseq", *args]
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli.main()
                code = 0
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else 0 if stop.code is None else 1
            except Exception:  # noqa: BLE001 - what a process would print as its traceback, exit status 1
                traceback.print_exc()
                code = 1
    finally:
        sys.argv = argv
        os.chdir(folder)
    texts = []
    for stream in (out, err):
        stream.flush()
        texts.append(stream.buffer.getvalue().decode("utf-8", errors="replace"))
    return subprocess.CompletedProcess(["genseq", *args], code, *texts)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """A user error: exit status 2 and one line on stderr naming every fragment, no traceback."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# Text


def generated_text(n_chars: int, seed: int = 0) -> str:
    """Text with learnable structure: sentences drawn from a tiny grammar."""
    rng = random.Random(seed)
    subjects = ["the cat", "a dog", "my friend", "the old king", "her brother"]
    verbs = ["sees", "likes", "follows", "finds", "calls"]
    objects = ["the moon.", "a red ball.", "the sea.", "his hat.", "the river."]
    lines = []
    while sum(len(line) for line in lines) < n_chars:
        lines.append(f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}\n")
    return "".join(lines)


# Real MIDI data: files written with mido/pretty_midi, chorales rendered by music21


def midi_bytes(tracks: list[list[mido.Message | mido.MetaMessage]], ticks_per_beat: int = 480) -> bytes:
    """A type-1 standard MIDI file holding `tracks` (message times are delta ticks)."""
    midi = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    midi.tracks.extend(mido.MidiTrack(track) for track in tracks)
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def band_with_tempo_changes(seed: int = 0) -> bytes:
    """Piano, bass, strings and drums on their own channels, with tempo changes at bars 2 and 3."""
    beat = 480
    tempo = [mido.MetaMessage("set_tempo", tempo=500_000, time=0),
             mido.MetaMessage("set_tempo", tempo=400_000, time=4 * beat),
             mido.MetaMessage("set_tempo", tempo=750_000, time=4 * beat)]
    tracks = [tempo]
    for channel, program, pitches in ((0, 0, (60, 64, 67)), (1, 33, (36, 43)), (2, 48, (72, 76)), (9, 0, (36, 42))):
        track = [mido.Message("program_change", channel=channel, program=program, time=0)]
        gap = 0
        for step in range(16):
            pitch = pitches[(step + seed) % len(pitches)]
            velocity = 20 + (step * 37 + seed * 11 + channel * 5) % 100
            length = beat // 2 + (step % 3) * 37 + seed
            track.append(mido.Message("note_on", channel=channel, note=pitch, velocity=velocity, time=gap))
            track.append(mido.Message("note_off", channel=channel, note=pitch, time=length))
            gap = beat - length
        tracks.append(track)
    return midi_bytes(tracks, beat)


def silent_file() -> bytes:
    """A well-formed MIDI file with a tempo and no notes."""
    return midi_bytes([[mido.MetaMessage("set_tempo", tempo=500_000, time=0)]])


def chorale_bytes(names: tuple[str, ...]) -> list[bytes]:
    """A few Bach chorales from music21's corpus rendered to MIDI, as the bach-chorales corpus does."""
    from music21 import corpus, midi

    return [midi.translate.streamToMidiFile(corpus.parse(f"bach/{name}")).writestr() for name in names]


def note_keys(midi: pretty_midi.PrettyMIDI, tokenizer: MidiTokenizer) -> Counter:
    """Each note as (program, drum, pitch, onset step, offset step, velocity bin) at the tokenizer's resolution.

    Decoded notes sit exactly on the grid, so two files agree on a key when every onset and offset is
    within the time resolution and every velocity in its bin. Notes last at least one step.
    """
    step = tokenizer.time_shift_ms / 1000
    keys: Counter = Counter()
    for instrument in midi.instruments:
        program = 0 if instrument.is_drum else instrument.program
        for note in instrument.notes:
            start = round(note.start / step)
            end = max(round(note.end / step), start + 1)
            keys[(program, instrument.is_drum, note.pitch, start, end,
                  note.velocity * tokenizer.velocity_bins // 128)] += 1
    return keys


def kept_share(original: pretty_midi.PrettyMIDI, tokenizer: MidiTokenizer) -> tuple[int, int]:
    """(notes that come back exactly after encode/decode, notes in `original`)."""
    before = note_keys(original, tokenizer)
    after = note_keys(tokenizer.decode(tokenizer.encode(original)), tokenizer)
    return sum((before & after).values()), sum(before.values())


def assert_writable(decoded: pretty_midi.PrettyMIDI) -> None:
    """A decoded file holds only valid notes, writes, and reads back with its notes."""
    from genseq.music.score import read_score

    for instrument in decoded.instruments:
        assert all(0 <= n.pitch <= 127 and n.end > n.start and 1 <= n.velocity <= 127 for n in instrument.notes)
    buffer = io.BytesIO()
    decoded.write(buffer)
    if any(i.notes for i in decoded.instruments):
        assert read_score(buffer.getvalue()).note_count() > 0


def read(data: bytes) -> pretty_midi.PrettyMIDI:
    return pretty_midi.PrettyMIDI(io.BytesIO(data))


# Where tests run: the `cuda` mark, and a device parameter that adds CUDA where a GPU is visible

NO_GPU = "no CUDA GPU visible (the cuda tests run on a GPU machine: pytest -m cuda, or python -m benchmarks.gpu)"
CUDA = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)]
"""Marks of a test that needs a CUDA GPU: selected by `-m cuda`, skipped without one."""

DEVICES = ["cpu", pytest.param("cuda", marks=CUDA, id="cuda")]
"""For @pytest.mark.parametrize("device", DEVICES): the same test on the CPU and, where there is one, the GPU."""


def needs_cuda(test):
    """@needs_cuda: the CUDA marks on one test."""
    for mark in CUDA:
        test = mark(test)
    return test


# The sampler on every device (tests/lm/test_fastpath.py, test_sampling.py, test_beam.py, tests/test_cuda.py)


def trained_looking_model(seed: int = 0, **options) -> LSTMLanguageModel:
    """Random weights scaled up so the next-token distributions are peaked, as after training."""
    torch.manual_seed(seed)
    config = ModelConfig(**{"vocab_size": 30, "hidden_size": 48, "num_layers": 2, **options})
    model = LSTMLanguageModel(config).eval()
    with torch.no_grad():
        for name, weight in model.named_parameters():
            weight.mul_(8.0 if name.startswith("head") else 3.0)
    return model


def assert_draws_follow(tokens: torch.Tensor, probs: torch.Tensor, atol: float) -> None:
    """Drawn token ids follow `probs` [vocab]: each frequency within `atol`, and no token of probability 0 drawn."""
    counts = torch.bincount(tokens.flatten().cpu(), minlength=probs.shape[-1]).double()
    probs = probs.cpu().double()
    assert counts[probs == 0].sum() == 0, f"tokens of probability 0 drawn: {counts[probs == 0].tolist()}"
    torch.testing.assert_close(counts / counts.sum(), probs, atol=atol, rtol=0)


def assert_step_follows_model(step, model: LSTMLanguageModel, state, steps: int) -> None:
    """`step` (loaded with `state`) gives the model's logits and state over `steps` greedy steps."""
    batch_size = state[0].shape[1]
    tokens = torch.arange(batch_size, device=state[0].device) % model.config.vocab_size
    with torch.inference_mode():
        for _ in range(steps):
            expected, state = model.step(tokens, state)
            torch.testing.assert_close(step(tokens), expected, rtol=1e-4, atol=1e-4)
            tokens = expected.argmax(-1)
    torch.testing.assert_close(step.state(), state, rtol=1e-4, atol=1e-4)


# The sampler's rules (tests/rules/, tests/music/test_abc_header.py)


def masked_after(rule, tokenizer: Tokenizer, text: str) -> set[str]:
    """What `rule` masks after `text`: characters, or a special token's name such as `<eod>`."""
    rule.start(tokenizer.encode(text), 1)
    logits = torch.zeros(1, tokenizer.vocab_size)
    rule.mask(logits)
    return {tokenizer.decode([token]) or tokenizer.token_name(token)
            for token in torch.isinf(logits[0]).nonzero()[:, 0].tolist()}


# The studio (tests/serve/)

FOLK = "folk-abc-small"
LOCAL = "http://127.0.0.1:8765"
"""What the test client sends as the studio's address (the studio answers only to its own host)."""
RAW = {"Content-Type": "application/octet-stream"}
TUNE = "X:1\nT:Test jig\nM:6/8\nL:1/8\nK:G\n|:GAB c2d|e3 d3|BAG AFD|G3 G3:|\n"
TUNES = "".join(f"X:{i}\nT:Tune {i}\nM:3/4\nL:1/8\nK:G\n|:GAB cde|{'dcB' if i % 2 else 'BAG'} AGF|"
                f"{'G6' if i % 3 else 'B2 A2 G2'}:|\n\n" for i in range(1, 301))
"""Enough tunes (about 15,000 characters) for the batches of a fine-tune (the Train tab's tests)."""


def assert_one_line_4xx(response, *fragments: str, status: int = 400) -> None:
    """A refused request: `status` and a one-line error naming every fragment, no traceback."""
    assert response.status_code == status, response.text
    message = response.json()["error"]
    assert "\n" not in message and "Traceback" not in message
    for fragment in fragments:
        assert fragment in message, message


def read_events(response, on_event=None) -> list[tuple[str, dict]]:
    """Every (event, data) of a Server-Sent Events response, to its end; `on_event` sees each as it arrives."""
    assert response.headers["content-type"].startswith("text/event-stream")
    events, name = [], None
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[6:])))
            if on_event:
                on_event(*events[-1])
    return events


def stream(client, settings: dict, on_event=None) -> list[tuple[str, dict]]:
    """Every (event, data) of one generation; `on_event` sees each as it arrives."""
    with client.stream("POST", "/api/generate", json=settings) as response:
        assert response.status_code == 200, response.read()
        return read_events(response, on_event)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def studio_process(runs: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """`genseq serve` on a free local port, as a user starts it: (its address once it answers, the process)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "genseq", "serve", "--port", str(port), "--runs", str(runs)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}", process
    finally:
        process.terminate()
        process.wait(timeout=20)
