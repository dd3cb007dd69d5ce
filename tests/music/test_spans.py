"""Spans of a piece to draw again, found in its text: bars as a musician counts them, characters, a marker."""

from __future__ import annotations

from fractions import Fraction

import pytest

from genseq.errors import InputError
from genseq.music.spans import MARKER, bar_numbers, bar_span, char_span, marker_span, parse_span

TUNE = ("X:1\nM:4/4\nL:1/8\nK:G\n"
        "D|GABc dedB|dcBA G2FG|\nABcd efge|d4 z4:|\n"
        "|:B|c2d2 e4|fgaf g4|1B8:|2c8|]\n")
"""A pickup (bar 0), a repeat, a second section with its own half-bar pickup, and two endings."""
ESSEN = "X:1\nM:3/4\nL:1/4\nK:C\nCDE\nFGA\nBcd\n"
"""Bars closed by line ends, as the Essen transcriptions write phrase ends."""


def parts(text: str, first: int, last: int) -> tuple[str, str, str]:
    span = bar_span(text, first, last)
    return text[:span.start], text[span.start:span.end], text[span.end:]


def test_bars_count_from_the_first_full_bar_and_repeats_do_not_renumber():
    assert parts(TUNE, 1, 1)[1] == "GABc dedB"  # the pickup D is bar 0
    assert parts(TUNE, 2, 3)[1] == "dcBA G2FG|\nABcd efge"  # across a line break
    before, bars, after = parts(TUNE, 4, 4)
    assert bars == "d4 z4" and after.startswith(":|\n|:B|")  # the fill joins the repeat sign after it
    assert parts(TUNE, 5, 6)[1] == "c2d2 e4|fgaf g4"  # the section's pickup B is not counted
    before, bars, after = parts(TUNE, 7, 7)
    assert bars == "B8" and before.endswith("|1") and after == ":|2c8|]\n"  # the first ending
    assert parts(TUNE, 8, 8)[1] == "c8"  # the second ending is a written bar too
    assert bar_span(TUNE, 1, 4).size == 4 and bar_span(TUNE, 2, 4).first == 2


@pytest.mark.parametrize(("first", "last", "after"), [(2, 5, 4), (6, 7, 6), (7, 8, 7)])
def test_a_span_that_crosses_a_repeat_or_an_ending_is_refused(first, last, after):
    """A fill's bars are parted by plain bar lines: drawn across `:|`, `|:` or `|1`, the tune's form would change."""
    with pytest.raises(InputError, match=f"crosses a repeat sign, double bar or ending after bar {after}"):
        bar_span(TUNE, first, last)


def test_a_span_starts_where_its_music_does_after_a_line_break_or_indentation():
    tune = "X:1\nM:4/4\nL:1/8\nK:D\nf>AA>A A>FA>A|a>ef>d e>dB<d:|\n   f<ab>a a<fe>d|g>ef>d B>AB<d:|\n"
    before, bars, after = parts(tune, 3, 4)  # bar 3 opens after the `:|` that ends the line above
    assert before.endswith(":|\n   ") and bars == "f<ab>a a<fe>d|g>ef>d B>AB<d"


def test_every_written_bar_has_the_number_a_span_names_it_by():
    numbers = bar_numbers(TUNE)
    assert numbers == [None, 1, 2, 3, 4, None, 5, 6, 7, 8]  # the pickup D and the section's pickup B uncounted
    assert bar_numbers("X:1\nK:G\nGABc|dedB|\n") == []  # no meter: no bars to count


def test_bars_closed_by_line_ends_and_spans_at_the_start_and_the_end():
    assert parts(ESSEN, 1, 1) == ("X:1\nM:3/4\nL:1/4\nK:C\n", "CDE", "\nFGA\nBcd\n")
    assert parts(ESSEN, 3, 3) == ("X:1\nM:3/4\nL:1/4\nK:C\nCDE\nFGA\n", "Bcd", "\n")


@pytest.mark.parametrize(("first", "last", "fragment"), [
    (0, 2, "bars count from 1"), (9, 10, "outside the tune, which has 8 bars besides its pickups"),
    (3, 2, "is empty"), (1, 8, "is the whole tune"),
])
def test_bad_bar_spans_say_why(first, last, fragment):
    with pytest.raises(InputError, match=fragment):
        bar_span(TUNE, first, last)


def test_a_span_holds_full_bars_but_may_end_in_a_sections_closing_half_bar():
    halves = "X:1\nM:4/4\nL:1/8\nK:G\nD|GABc dedB|dcBA G3:|\n|:d|g2fe d4|cBAG FGAB|]\n"
    before, bars, after = parts(halves, 1, 2)  # G3 is the first half of a bar whose second half is the pickup d
    assert bars == "GABc dedB|dcBA G3" and after.startswith(":|\n|:d|")
    assert bar_span(halves, 1, 2).last_bar == Fraction(7, 8) and bar_span(halves, 1, 1).last_bar is None
    with pytest.raises(InputError, match="bar 2 is not a full bar"):
        bar_span(halves, 2, 3)  # the half bar inside the span
    assert halves[bar_span(halves, 3, 3).start:].startswith("g2fe")
    with pytest.raises(InputError, match="bar 2 is not a full bar"):
        bar_span("X:1\nM:4/4\nL:1/8\nK:G\nGABc dedB|GABc d|efga b4|]\n", 1, 2)  # uneven, closing no section


def test_a_tune_without_a_meter_has_no_bars_to_count():
    with pytest.raises(InputError, match="no readable meter"):
        bar_span("X:1\nK:G\nGABc|dedB|\n", 1, 1)


def test_characters_count_from_one_and_a_marker_marks_one_place():
    text = "To be, or not to be: that is the question."
    span = char_span(text, 4, 5)
    assert text[span.start:span.end] == "be" and span.size == 2
    assert char_span(text, 1, 2).start == 0 and char_span(text, 41, 42).end == len(text)
    marked = f"To be, or {MARKER} that is the question."
    span = marker_span(marked)
    assert marked[span.start:span.end] == MARKER and span.size is None
    for bad, fragment in [((0, 3), "outside the text, which has 42"), ((1, 42), "whole text"), ((5, 4), "empty")]:
        with pytest.raises(InputError, match=fragment):
            char_span(text, *bad)
    for bad, fragment in [(text, r"holds 0 \[\.\.\.\] markers"), (marked + MARKER, "holds 2"), (MARKER, "only its")]:
        with pytest.raises(InputError, match=fragment):
            marker_span(bad)


def test_spans_are_written_as_a_musician_writes_them():
    assert parse_span("5-8", "--bars") == (5, 8) and parse_span(" 5 ", "--bars") == (5, 5)
    assert parse_span((2, 3), "--bars") == (2, 3)
    with pytest.raises(InputError, match="--bars 'five' is not a span; write e.g. --bars 5-8"):
        parse_span("five", "--bars")
