"""The part of a piece a user wants drawn again (`TrainedModel.infill`): bars of an ABC tune, characters of a text,
or a `[...]` marker in it, found as positions in the piece's text so that everything around them stays as written;
beats of a chorale, found as beats from the start of the piece; bars or seconds of a MIDI file, checked here and
found on the model's grid by `api.infill_midi`.

Bars are numbered as a musician counts them: an incomplete first bar (a pickup, anacrusis) is bar 0 and the first
full bar is bar 1; a section's own pickup (an incomplete bar just after a repeat sign or double bar) is not counted
either. Repeat signs and endings do not renumber: each written bar counts once, a second ending too. They are the
judge's bars (`music.bars`), so a fill is held to the same bars the judge counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from genseq.errors import InputError
from genseq.music.bars import BOUNDARY, Bar, read_tune

MARKER = "[...]"
"""What marks the place of a fill in a text when no characters are named."""
MARKER_LENGTH = 50
"""Characters a fill at a marker holds unless told (here, without torch, for `genseq --help`)."""
_SPAN = re.compile(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?")
_SECONDS = re.compile(r"\s*(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)\s*")


@dataclass(frozen=True)
class Span:
    """Where a fill goes in a piece's text: `text[start:end]` is replaced, the rest stays character for character."""

    start: int
    end: int
    size: int | None
    """Bars (ABC) or characters (text) the fill holds; None for a marker, whose fill length the caller chooses."""
    first: int = 0
    """The first bar or character of the span as the user numbered it (0 for a marker)."""
    last_bar: Fraction | None = None
    """The length in whole notes of an ABC span's last bar where it is a section's closing half bar (which pairs with
    the next section's pickup), for the fill's last bar to match; None where every bar is the meter's length."""


def parse_span(value: str | tuple[int, int], option: str) -> tuple[int, int]:
    """`5-8` (or `5`, or a pair) as the first and last number, both included; `option` names it in errors."""
    if isinstance(value, tuple):
        first, last = value
    else:
        match = _SPAN.fullmatch(value)
        if not match:
            raise InputError(f"{option} {value!r} is not a span; write e.g. {option} 5-8")
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
    return first, last


def _check_not_empty(span: str, first: int, last: int) -> None:
    if last < first:
        raise InputError(f"{span} is empty: its last must not come before its first")


def bar_span(tune: str, first: int, last: int) -> Span:
    """Bars `first` to `last` of an ABC tune. The span must lie inside the tune, leave some of it, and hold bars of the
    meter's length (a fill is written in full bars), but for its last, which may be a section's closing half bar (the
    short bar before a repeat sign or double bar that pairs with the next section's pickup): the fill's last bar is
    then as long. Any other short bar is refused, and so is a span that crosses a repeat sign, double bar or ending
    (a fill's bars are parted by plain bar lines, so the tune's form would change), saying so."""
    read = read_tune(tune)
    if not read.meter_known:
        raise InputError("the tune has no readable meter (an M: line such as M:6/8), so its bars cannot be counted")
    counted = [bar for i, bar in enumerate(read.bars) if not _pickup(bar, i)]
    pickup = len(counted) < len(read.bars)
    if not counted:
        raise InputError("the tune has no full bars to draw again")
    span = f"--bars {first}-{last}"
    _check_not_empty(span, first, last)
    if first < 1:
        raise InputError(f"{span}: bars count from 1 (a pickup is bar 0 and stays as written)")
    if last > len(counted):
        raise InputError(f"{span} lies outside the tune, which has {len(counted)} bars"
                         + (" besides its pickups" if pickup else ""))
    if first == 1 and last == len(counted):
        raise InputError(f"{span} is the whole tune; leave some of it to fill around (or draw a new tune with "
                         "`genseq sample`)")
    for number in range(first, last + 1):
        bar = counted[number - 1]
        if not bar.full and not (number == last and _closing_half_bar(bar)):
            raise InputError(f"{span}: bar {number} is not a full bar (a half bar inside the span, or an uneven "
                             "bar); choose bars of the meter's length, or end the span at the half bar")
    for number in range(first, last):
        bar, after = counted[number - 1], counted[number]
        if BOUNDARY.search(bar.closed_by) or BOUNDARY.search(after.opened_by) or after.ending != bar.ending:
            raise InputError(f"{span} crosses a repeat sign, double bar or ending after bar {number}, which a fill "
                             f"(plain bar lines) would drop; draw --bars {_bars(first, number)} and "
                             f"--bars {_bars(number + 1, last)} apart")
    closing = counted[last - 1]
    start, end = counted[first - 1].start, closing.end
    if start is None or end is None:  # a counted bar always has both; kept for the type checker
        raise InputError(f"{span}: the bars cannot be found in the tune's text")
    while start < end and tune[start].isspace():  # a bar opened at a line's end starts on the next line: the line
        start += 1  # break and the indentation stay as written, and the fill starts where its music does
    return Span(start, end, last - first + 1, first, None if closing.full else closing.length)


def _bars(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}-{last}"


def _closing_half_bar(bar: Bar) -> bool:
    """Whether a short bar closes a section (a repeat sign or double bar after it), as the bar that pairs with the
    next section's pickup does."""
    return not bar.empty and bar.meter is not None and bar.length < bar.meter and bool(BOUNDARY.search(bar.closed_by))


def bar_numbers(tune: str) -> list[int | None]:
    """The number of each written bar of a tune, in order, as `bar_span` counts them: None for a pickup, which is
    not counted. Empty where the tune has no readable meter (its bars cannot be counted)."""
    read = read_tune(tune)
    if not read.meter_known:
        return []
    numbers: list[int | None] = []
    for index, bar in enumerate(read.bars):
        numbers.append(None if _pickup(bar, index) else sum(number is not None for number in numbers) + 1)
    return numbers


def _pickup(bar: Bar, index: int) -> bool:
    """Whether a bar is a pickup, not counted: an incomplete first bar, or one that opens a section."""
    return not bar.full and (index == 0 or (bool(BOUNDARY.search(bar.opened_by)) and not bar.ending))


def char_span(text: str, first: int, last: int) -> Span:
    """Characters `first` to `last` of a text, counted from 1, both included."""
    span = f"--chars {first}-{last}"
    _check_not_empty(span, first, last)
    if first < 1 or last > len(text):
        raise InputError(f"{span} lies outside the text, which has {len(text)} characters (counted from 1)")
    if first == 1 and last == len(text):
        raise InputError(f"{span} is the whole text; leave some of it to fill around")
    return Span(first - 1, last, last - first + 1, first)


def beat_span(beats: int, first: int, last: int) -> Span:
    """Beats `first` to `last` of a piece `beats` long, counted from 1 at its very start (a pickup's beats count:
    a MIDI file does not mark where its pickup ends), both included; `start` and `end` are beats from the start."""
    return _counted(beats, first, last, "--beats", "beats")


def midi_bar_span(bars: int, first: int, last: int) -> Span:
    """Bars `first` to `last` of a MIDI file of `bars` bars, counted from 1 at its very start as its time signatures
    give them (a MIDI file does not mark a pickup); `start` and `end` are bars from the start."""
    return _counted(bars, first, last, "--bars", "bars")


def _counted(count: int, first: int, last: int, option: str, unit: str) -> Span:
    span = f"{option} {first}-{last}"
    _check_not_empty(span, first, last)
    if first < 1 or last > count:
        raise InputError(f"{span} lies outside the piece, which has {count} {unit} (counted from 1)")
    if first == 1 and last == count:
        raise InputError(f"{span} is the whole piece; leave some of it to fill around (or draw a new piece with "
                         "`genseq sample`)")
    return Span(first - 1, last, last - first + 1, first)


def parse_seconds(value: str | tuple[float, float]) -> tuple[float, float]:
    """`12-20` or `12.5-20` (seconds from the start of a piece) as the span's start and end."""
    if isinstance(value, tuple):
        start, end = (float(v) for v in value)
    else:
        match = _SECONDS.fullmatch(value)
        if not match:
            raise InputError(f"--seconds {value!r} is not a span of time; write e.g. --seconds 12-20 (or 12.5-20)")
        start, end = float(match.group(1)), float(match.group(2))
    if end <= start:
        raise InputError(f"--seconds {start:g}-{end:g} is empty: its end must come after its start")
    return start, end


def marker_span(text: str) -> Span:
    """The place of the one `[...]` marker in a text."""
    found = text.count(MARKER)
    if found != 1:
        raise InputError(f"the text holds {found} {MARKER} markers; mark the place to fill with one, "
                         "or name characters with --chars")
    if text.strip() == MARKER:
        raise InputError(f"the text is only its {MARKER} marker; leave some of it to fill around")
    start = text.index(MARKER)
    return Span(start, start + len(MARKER), None)


__all__ = ["MARKER", "MARKER_LENGTH", "Span", "bar_numbers", "bar_span", "beat_span", "char_span", "marker_span",
           "midi_bar_span", "parse_seconds", "parse_span"]
