"""Bars kept at their meter's length while an ABC model samples: masked by hand-made cases, then judged."""

from __future__ import annotations

import string

import pytest

from genseq import api
from genseq.errors import ConfigError
from genseq.music.bars import all_bars_full, read_tune
from genseq.rules.full_bars import FullBars
from genseq.tokenizers.abc import AbcTokenizer
from genseq.tokenizers.text import CharTokenizer
from tests.helpers import assert_one_line_error, masked_after, run_cli

ABC = AbcTokenizer(string.printable)
HEADER = "X:1\nT:Test\nM:4/4\nL:1/8\nK:G\n"


def forbidden_after(text: str) -> set[str]:
    """The characters the rule masks after `text`."""
    return masked_after(FullBars(ABC), ABC, text)


def test_a_short_bar_may_not_be_closed_and_a_full_one_takes_no_more_notes():
    short = forbidden_after(HEADER + "GABc dedB|dcBA G2")  # six eighths of eight
    assert {"|", ":", "[", "]", "\\"} <= short and "2" in short  # closing it, or G2 -> G22 (past the bar)
    assert not {"/", "A", "z", "\n", " "} & short  # G2/ shortens; more notes; a line break or a space
    assert " " in forbidden_after(HEADER + "GABc dedB|dcBA G2 ")  # but not a second one
    full = forbidden_after(HEADER + "GABc dedB|dcBA G2F2")
    assert {"A", "g", "z", "^", "(", "2", "\n"} <= full and not {"|", "/", ":", " "} & full  # \n: bar line first
    assert "\n" not in forbidden_after(HEADER + "GABc dedB|dcBA G2F2|")


def test_pickups_halves_at_repeats_and_text_that_takes_no_time_are_left_free():
    assert "|" not in forbidden_after(HEADER + "D")  # the first bar is a pickup
    assert "\n" in forbidden_after(HEADER + "D|GABc dedB|\n")  # a blank line would end the tune
    assert "|" not in forbidden_after(HEADER + "D|GABc dedB:|dcB")  # the bar after a repeat sign may be a half
    assert forbidden_after(HEADER + 'D|GABc dedB|"Am') == set()  # inside a chord symbol
    assert forbidden_after(HEADER + "D|GABc dedB|{ga") == set()  # grace notes take no time
    assert forbidden_after("X:1\nT:Te") == set()  # the header
    assert forbidden_after("X:1\nT:Test\nM:none\nK:G\nGABcdedBdcB") == set()  # no meter: no bars to keep


def test_only_accidentals_abc_can_read_are_written():
    assert {"=", "^", "_"} <= forbidden_after(HEADER + "GABc =")  # `==`, `=^`, `=_`: music21 refuses the tune
    assert {"=", "_"} <= forbidden_after(HEADER + "GABc ^") and "^" not in forbidden_after(HEADER + "GABc ^")
    assert {"=", "^", "_"} <= forbidden_after(HEADER + "GABc __")  # no third flat
    assert not {"c", "C"} & forbidden_after(HEADER + "GABc ^^")  # the note itself is free
    assert "=" not in forbidden_after(HEADER + "GABc ")


def test_the_bar_reader_follows_lines_meters_and_broken_rhythm():
    assert "|" not in forbidden_after(HEADER + "D|GABc dedB|dcBA\nG2F2")  # a line break inside a bar continues it
    assert "|" in forbidden_after(HEADER + "D|GABc dedB|[M:3/4]dcB A")  # three eighths of a 3/4 bar
    assert "|" not in forbidden_after(HEADER + "D|GABc dedB|[M:3/4]dcBA G2")
    seven = forbidden_after(HEADER + "D|GABc dedB|dcBA G2F")  # seven eighths
    assert "3" in seven and not {"2", ">", "<", "/"} & seven  # F3 is past the bar; F2 and F>G fill it
    assert ">" in forbidden_after(HEADER + "D|GABc dedB|dcBA G3F")  # the bar is full: F> lengthens F past it


def test_every_abc_model_samples_under_the_rule_unless_told_not_to():
    model = api.load("folk-abc-small")
    model.payload.pop("sample_defaults", None)  # a run trained by a user names none
    assert model.sample_config().full_bars and not model.sample_config(full_bars=False).full_bars
    assert model.sample_config(beam_size=2).full_bars  # beam search drops a distribution, not a rule


def test_the_rule_is_for_abc_models_only():
    with pytest.raises(ConfigError, match="ABC tunes at their meter's length; this is a char model"):
        FullBars(CharTokenizer("abc"))


def test_the_shipped_folk_model_writes_more_tunes_with_every_bar_full_under_the_rule():
    """At temperature 1.3, where the model alone breaks most bars (the 2x384 fills 14 of 16 on its own at 1.0); in
    fp32, so the tunes drawn do not change with the precision `auto` picks on each CPU."""
    model = api.load("folk-abc-small")
    options = dict(num_samples=16, seed=1, temperature=1.3, length=1500, precision="fp32")
    free = [all_bars_full(read_tune(text)) for text in model.sample(full_bars=False, **options)]
    ruled = [all_bars_full(read_tune(text)) for text in model.sample(full_bars=True, **options)]
    assert sum(ruled) >= sum(free) + 4 and sum(ruled) >= 13, (sum(free), sum(ruled))


def test_the_cli_takes_full_bars_and_refuses_it_for_other_models(tmp_path):
    out = tmp_path / "tunes"
    result = run_cli("sample", "folk-abc-small", "--full-bars", "--num-samples", "2", "--seed", "4", "--length", "600",
                     "--output-dir", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    assert len(list(out.glob("*.abc"))) == 2
    assert_one_line_error(run_cli("sample", "bach-chorales-small", "--full-bars", "--length", "10",
                                  "--output-dir", str(tmp_path / "x")),
                          "--full-bars keeps the bars of ABC tunes at their meter's length; this is a voices model")
