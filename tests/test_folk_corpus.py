"""Folk tunes that are music, not catalogue entries: the cleaned folk-abc corpus."""

import re

import pytest

from genseq.abc_header import clean_tunes, default_unit_length, with_unit_length
from genseq.corpora import Document, builtin_documents

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


def test_a_tune_without_l_gets_the_standard_default_from_its_meter():
    assert with_unit_length("X:1\nM:2/4\nK:G\nGA|\n") == "X:1\nM:2/4\nL:1/16\nK:G\nGA|\n"
    assert with_unit_length("X:1\nM:none\nK:G\nGA|\n") == "X:1\nM:none\nL:1/8\nK:G\nGA|\n"
    assert with_unit_length("X:1\nM:2/4\nL:1/8\nK:G\nGA|\n") == "X:1\nM:2/4\nL:1/8\nK:G\nGA|\n"
    assert with_unit_length("GA|\nK:D\nGA|\n") == "GA|\nK:D\nGA|\n"  # no header: a continuation
    assert str(default_unit_length(None)) == "1/8"


