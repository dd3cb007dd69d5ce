"""The header rule: one meter and one unit length of the model's corpus, the meter before the key."""

import pytest

from genseq.errors import InputError
from genseq.music.controls import folk_primer
from genseq.rules.valid_header import ValidHeader
from genseq.tokenizers import AbcTokenizer
from tests.helpers import masked_after

ABC = AbcTokenizer("X:1\nTMLK0123456789/ C|noe%ABCDEFGabcdefg", meters=["6/8", "3/4", "C|", "none"],
                   units=["1/8", "1/16"])


def forbidden_after(text: str) -> set[str]:
    """The characters (and `<eod>`) the header rule masks after `text`."""
    return masked_after(ValidHeader(ABC), ABC, text)


def test_a_header_gets_one_meter_and_one_unit_of_the_corpus_and_the_meter_before_its_key():
    start = forbidden_after("X:1\n")
    assert "K" in start and not {"M", "T", "L", "%"} & start  # no key before the meter
    assert {"1", " ", "\n", "|", "<eod>"} <= start  # no music, no blank line, no end before the key
    assert "M" in forbidden_after("X:1\nM:6/8\n") and "K" not in forbidden_after("X:1\nM:6/8\n")  # one meter
    assert set(ABC.chars) - forbidden_after("X:1\nT") == {":"}
    assert set(ABC.chars) - forbidden_after("X:1\nM:") == {"6", "3", "C", "n", " "}
    assert set(ABC.chars) - forbidden_after("X:1\nM:6/") == {"8"}  # 6/4 is no meter of this corpus
    assert set(ABC.chars) - forbidden_after("X:1\nM:C") == {"|"} and "\n" not in forbidden_after("X:1\nM:C|")
    assert set(ABC.chars) - forbidden_after("X:1\nL:1/") == {"8", "1"}  # 1/8 or 1/16, not 1/4
    assert "L" in forbidden_after("X:1\nL:1/8\n") and "L" not in forbidden_after("X:1\nM:6/8\n")
    assert forbidden_after("X:1\nT:Title") == {"<eod>"}  # a field's value is free, but the tune goes on


def test_the_body_is_left_to_the_other_rules_but_for_its_changes_of_meter_and_unit():
    assert forbidden_after("X:1\nM:6/8\nK:G\nGAB") == set()
    assert forbidden_after("X:1\nM:6/8\nK:G\nGAB|\n") == set()
    assert set(ABC.chars) - forbidden_after("X:1\nM:6/8\nK:G\nGAB|\nM:3") == {"/"}
    assert set(ABC.chars) - forbidden_after("X:1\nM:6/8\nK:G\nGAB|\nL:1/1") == {"6"}
    assert forbidden_after("X:1\nK:G\n") == set()  # a primer's header is read, never changed


def test_a_meter_or_unit_its_corpus_never_writes_is_refused_as_a_control():
    assert folk_primer(ABC, meter="6/8", unit_length="1/16", key="D") == "X:1\nM:6/8\nL:1/16\nK:D\n"
    with pytest.raises(InputError, match=r"--meter '5/4': no tune of this model's corpus is written in it; pick one "
                                         r"of 3/4, 6/8, C\|, none"):
        folk_primer(ABC, meter="5/4")
    with pytest.raises(InputError, match="--unit-length '1/4': .* pick one of 1/16, 1/8"):
        folk_primer(ABC, unit_length="1/4")
