"""Folk tunes that are music, not catalogue entries: the cleaned folk-abc corpus, and valid headers when sampling
(the header rule's own cases: tests/rules/test_valid_header.py)."""

import re

import pytest

from genseq import api
from genseq.corpora.sources import Document, builtin_documents
from genseq.music.abc_header import (
    UncleanTune,
    around_span_as_learnt,
    clean_tunes,
    default_unit_length,
    is_meter,
    with_unit_length,
)
from genseq.rules.valid_header import COMMON_METERS, COMMON_UNITS
from genseq.tokenizers import AbcTokenizer, tokenizer_from_dict

FIELD = re.compile(r"^([A-Za-z+]):", re.MULTILINE)
FIELDS = ["M", "L", "K", "P"]


@pytest.fixture(scope="module")
def folk_documents() -> list[Document]:
    return builtin_documents("folk-abc")[0]


@pytest.fixture(scope="module")
def folk_tunes(folk_documents) -> list[str]:
    return [doc.text for doc in folk_documents]


def header(tune: str) -> list[str]:
    """The tune's header lines, up to and with its first `K:` line."""
    lines = tune.split("\n")
    return lines[: next((i for i, line in enumerate(lines) if line.startswith("K:")), len(lines) - 1) + 1]


def assert_valid_header(tune: str, meters, units) -> None:
    """One `M:` of `meters`, one `L:` of `units` and `K:` last in the header."""
    lines = header(tune)
    named = [line[:2] for line in lines]
    assert lines[-1].startswith("K:") and named.count("K:") == 1, tune
    assert named.count("M:") == 1 and lines[named.index("M:")][2:].strip() in meters, tune
    assert named.count("L:") == 1 and lines[named.index("L:")][2:].strip() in units, tune


def test_folk_abc_tunes_have_one_meter_a_unit_and_a_key_and_no_catalogue_fields(folk_tunes):
    assert len(folk_tunes) > 12_900
    for tune in folk_tunes:
        assert tune.startswith("X:1\nM:") and "\n\n" not in tune, tune
        assert_valid_header(tune, {line[2:] for line in header(tune) if line.startswith("M:")},
                            {f"1/{2 ** n}" for n in range(7)})
        assert set(FIELD.findall(tune)) <= {"X", *FIELDS}, tune
        assert not re.search(r"^%", tune, re.MULTILINE), tune


def test_a_tune_gets_the_standard_unit_length_and_loses_its_catalogue_lyrics_and_free_text():
    tune = ("X: 12\nT: The Foxhunter\nN: C0505\nO: Ireland\nR: jig\nM: 9/8 % Aird bars it in 6/8\nZ: Contributed\n"
            "K: G % a comment\nGAB dBG AGE|\nw: la la la\n% a comment\nM:6/8\nGAB dBG|\n\nFree text after the tune\n")
    assert clean_tunes([tune], FIELDS) == (["X:1\nM:9/8\nL:1/8\nK:G\nGAB dBG AGE|\nM:6/8\nGAB dBG|\n"], {})
    for meter, unit in (("2/4", "1/16"), ("3/4", "1/8"), ("C", "1/8"), ("none", "1/8")):
        assert f"\nL:{unit}\n" in clean_tunes([f"X:1\nM:{meter}\nK:D\nDEF|\n"], FIELDS)[0][0]


def test_tunes_whose_header_cannot_be_made_valid_are_left_out_and_counted():
    tunes = ["X:1\nM:2/4\nDEF|\n", "X:2\nT:no meter\nK:D\nDEF|\n", "X:3\nM:FREI4/4\nK:D\nDEF|\n",
             "X:4\nM:2/4\nK:D\n[V:1] DEF|\n[V:2] ABC|\n", "X:5\nM:2/4\nK:D\nDEF|\n"]
    kept, skipped = clean_tunes(tunes, FIELDS)
    assert kept == ["X:1\nM:2/4\nL:1/16\nK:D\nDEF|\n"]
    assert skipped == {"without K:": 1, "without M:": 1, "with an unreadable M:": 1, "in more than one voice": 1}


def test_the_abc_tokenizer_keeps_the_meters_and_units_of_its_corpus(folk_documents):
    tokenizer = AbcTokenizer.build(folk_documents)
    assert {"2/4", "3/4", "6/8", "C|", "none"} <= set(tokenizer.meters) and all(map(is_meter, tokenizer.meters))
    assert set(tokenizer.units) == {"1/1", "1/2", "1/4", "1/8", "1/16", "1/32"}
    assert tokenizer_from_dict(tokenizer.to_dict()) == tokenizer
    old = tokenizer_from_dict({"kind": "abc", "chars": "X:1"})  # saved before they were kept
    assert old.meters is None and old.units is None


def test_a_tune_without_l_gets_the_standard_default_from_its_meter():
    assert with_unit_length("X:1\nM:2/4\nK:G\nGA|\n") == "X:1\nM:2/4\nL:1/16\nK:G\nGA|\n"
    assert with_unit_length("X:1\nM:none\nK:G\nGA|\n") == "X:1\nM:none\nL:1/8\nK:G\nGA|\n"
    assert with_unit_length("X:1\nM:2/4\nL:1/8\nK:G\nGA|\n") == "X:1\nM:2/4\nL:1/8\nK:G\nGA|\n"
    assert with_unit_length("GA|\nK:D\nGA|\n") == "GA|\nK:D\nGA|\n"  # no header: a continuation
    assert str(default_unit_length(None)) == "1/8"


def test_the_shipped_folk_model_writes_valid_headers_at_a_high_temperature():
    model = api.load("folk-abc-small")
    meters, units = model.tokenizer.meters or COMMON_METERS, model.tokenizer.units or COMMON_UNITS
    for full_bars in (True, False):
        tunes = model.sample(num_samples=8, seed=1, temperature=1.6, length=400, precision="fp32",
                             full_bars=full_bars)
        for tune in tunes:
            assert_valid_header(tune, meters, units)


def test_a_model_keeps_the_meters_and_units_of_its_tunes_and_writes_no_others(folk_tunes, tmp_path):
    """Trained for a few steps it writes little but noise (and may not reach `K:` in its length), so this checks
    what the rule keeps wherever it goes: the header's one `M:` and one `L:`, and values of its tunes."""
    tunes = folk_tunes[::400]
    source = tmp_path / "tunes.abc"
    source.write_text("\n".join(tunes), encoding="utf-8")
    run = api.train(str(source), name=str(tmp_path / "run"), progress=False, model={"hidden_size": 32, "num_layers": 1},
                    steps=5, batch_size=8, seq_len=32)
    model = api.load(run.run_dir)
    tokenizer = model.tokenizer
    for name, kept in (("M", tokenizer.meters), ("L", tokenizer.units)):
        assert set(kept) == {line[2:] for tune in tunes for line in tune.split("\n") if line.startswith(f"{name}:")}
    for tune in model.sample(num_samples=8, seed=2, temperature=1.5, length=300, precision="fp32"):
        lines = header(tune[: tune.rfind("\n") + 1])  # its lines that ended before the length did
        for name, kept in (("M", tokenizer.meters), ("L", tokenizer.units)):
            values = [line[2:].strip() for line in lines if line.startswith(f"{name}:")]
            assert len(values) <= 1 and set(values) <= set(kept), tune


CATALOGUED = ("X: 41\nT:Cat in the Kitchen\n% Nottingham Music Database\nS:Bob McQuillen Jan 1975\nM:6/8\nK:Bm\n"
              "F|B2c dcB|e2f gfe|\n% second line\nfbb bag|fgf edc:|\nW:words\n\nX:42\nT:Next\n")


def test_around_a_span_the_tune_reads_as_the_corpus_writes_tunes_and_the_spans_line_stays():
    at = CATALOGUED.index("e2f")
    left, right = around_span_as_learnt(CATALOGUED[:at], CATALOGUED[at + 3:], ["M", "L", "K", "P"])
    assert left == "X:1\nM:6/8\nL:1/8\nK:Bm\nF|B2c dcB|"  # no title, source or comment: symbols it never saw
    assert right == " gfe|\nfbb bag|fgf edc:|\n"  # the comment, the lyrics and the next tune are not read
    bare = "M:6/8\nL:1/8\nK:G\nGAB c2d|e2d cBA|\n"  # no X: line: its first field is read all the same
    left, _ = around_span_as_learnt(bare[:bare.index("e2d")], "|\n", ["M", "L", "K"])
    assert left == "X:1\nM:6/8\nL:1/8\nK:G\nGAB c2d|"
    with pytest.raises(UncleanTune, match="without K:"):
        around_span_as_learnt("X:1\nM:6/8\nB2c", "|", ["M", "L", "K"])
