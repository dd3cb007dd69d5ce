"""ABC tunes read as bars, straight from the text: each bar's length in whole notes, its bar lines and notes.

This is an independent checker: it does not go through music21, so a tune music21 reads leniently
is still judged by what its bars say. Durations follow ABC 2.1: note lengths in `L:` units (the
default unit is 1/16 under a meter below 3/4, else 1/8), broken rhythm (`>`, `<`), tuplets
(`(3`, `(p:q:r`), chords (the first note's length), `M:` and `L:` changes in field lines and inline
fields. Grace notes, chord symbols, annotations, decorations and comments take no time. A line break
inside a bar continues it, as ABC says, except where the bar is already full (`line_end`). Each bar keeps
where it lies in the tune's text (`Bar.start`, `Bar.end`), so a span of bars can be cut out (`music.spans`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction

from genseq.music.abc_header import default_unit_length, meter_length, unit_length

FIELD_LINE = re.compile(r"^([A-Za-z]):(.*)$")
_TOKEN = re.compile(r"""
    (?P<skip>"[^"\n]*"|![^!\n]*!|\+[^+\n]*\+|\{[^}\n]*\}|%.*)
  | (?P<inline>\[[A-Za-z]:[^\]\n]*\])
  | (?P<bar>\[\|\]?|:*\|+\]?:*|::+|\[(?=\d))(?P<ending>\s*\d+(?:[,-]\d+)*)?
  | (?P<tuplet>\((?P<p>\d)(?::(?P<q>\d*))?(?::(?P<r>\d*))?)
  | (?P<chord>\[(?P<notes>[^\]\n]*)\](?P<chord_length>\d*(?:/+\d*)?))
  | (?P<note>(?P<accidental>\^{1,2}|_{1,2}|=)?(?P<pitch>[A-Ga-g][,']*)(?P<length>\d*(?:/+\d*)?))
  | (?P<rest>[zx](?P<rest_length>\d*(?:/+\d*)?))
  | (?P<bars_rest>Z(?P<bars>\d*))
  | (?P<broken>>{1,3}|<{1,3})
""", re.VERBOSE)
_CHORD_NOTE = re.compile(r"(\^{1,2}|_{1,2}|=)?([A-Ga-g][,']*)(\d*(?:/+\d*)?)")
_DEFAULT_TUPLET_TIME = {2: 3, 3: 2, 4: 3, 6: 2, 8: 3}
BOUNDARY = re.compile(r":|\|\||\|\]|\[\|")
"""Bar lines that end a section: repeat signs, double bars, thick bars."""


@dataclass
class Bar:
    length: Fraction = Fraction(0)
    """Whole notes in the bar."""
    meter: Fraction | None = None
    """The meter's bar length in whole notes where the bar starts (None: free or unreadable meter)."""
    opened_by: str = ""
    closed_by: str = ""
    ending: str = ""
    """The repeat ending the bar belongs to ('1', '2', ...), '' outside endings."""
    notes: list[str] = field(default_factory=list)
    """The bar's notes, rests and chords as written, decorations and spaces dropped (for copy checks)."""
    whole_bars: int = 0
    """Bars of rest written as `Z` (`Z4` is four): such a bar is full by definition."""
    start: int | None = None
    """Where the bar's text begins in the tune: after the bar line that opened it, or at the start of its line."""
    end: int | None = None
    """Where its text ends: at the bar line that closed it, or at the end of the line that closed it (None: open)."""

    @property
    def empty(self) -> bool:
        return not self.notes and not self.whole_bars

    @property
    def full(self) -> bool:
        return self.whole_bars > 0 or (self.meter is not None and self.length == self.meter)


@dataclass
class Tune:
    bars: list[Bar]
    bar_lines: list[str]
    """Every bar line and repeat ending marker of the tune, in order (its form, without the notes)."""
    meter_known: bool


def _multiplier(text: str) -> Fraction:
    """The length written after a note in units of L: `2`, `/2`, `/`, `//`, `3/2` (a divisor of 0, which is not
    ABC, divides by nothing)."""
    number, _, rest = text.partition("/")
    value = Fraction(int(number)) if number else Fraction(1)
    if "/" in text:
        for part in ("/" + rest).split("/")[1:]:
            value /= (int(part) or 1) if part else 2
    return value


def _compound(meter: Fraction | None) -> bool:
    return meter is not None and meter.denominator == 8 and meter.numerator % 3 == 0 and meter.numerator > 3


class BarReader:
    """State while reading one tune's body: meter, unit, tuplet and broken-rhythm state, the bars so far."""

    def __init__(self, meter: Fraction | None, unit: Fraction | None):
        self.meter, self.unit = meter, unit or default_unit_length(meter)
        self.bars = [Bar(meter=meter)]
        self.bar_lines: list[str] = []
        self.tuplet_factor, self.tuplet_left = Fraction(1), 0
        self.broken_next = Fraction(1)
        self.last_length = Fraction(0)
        self.ending = ""

    def field(self, name: str, value: str) -> None:
        if name == "M":
            self.meter = meter_length(value)
            if self.bars[-1].empty:
                self.bars[-1].meter = self.meter
        elif name == "L":
            self.unit = unit_length(value) or self.unit

    def event(self, written: str, multiplier: Fraction) -> None:
        length = multiplier * self.unit * self.broken_next
        self.broken_next = Fraction(1)
        if self.tuplet_left:
            length *= self.tuplet_factor
            self.tuplet_left -= 1
        bar = self.bars[-1]
        if bar.empty:
            bar.meter = self.meter
        bar.length += length
        bar.notes.append(written)
        self.last_length = length

    def broken(self, marks: str) -> None:
        shift = 1 - Fraction(1, 2 ** len(marks))
        first, second = (1 + shift, 1 - shift) if marks[0] == ">" else (1 - shift, 1 + shift)
        bar = self.bars[-1]
        if bar.notes:
            bar.length += self.last_length * (first - 1)
            bar.notes.append(marks)
        self.broken_next = second

    def tuplet(self, p: int, q: str | None, r: str | None) -> None:
        time = int(q) if q else _DEFAULT_TUPLET_TIME.get(p, 3 if _compound(self.meter) else 2)
        self.tuplet_factor, self.tuplet_left = Fraction(time, p), int(r) if r else p

    def bar_line(self, line: str, ending: str, at: tuple[int, int] = (0, 0)) -> None:
        """A bar line (and the repeat ending after it) read at text positions `at` (its start and end)."""
        line, ending = line.strip(), ending.strip()
        if line and line != "[":
            self.bar_lines.append(line)
            if self.bars[-1].empty:  # bar lines in a row (`:| |` across a line break) open one bar
                self.bars[-1].opened_by += line
            else:
                self.bars[-1].closed_by, self.bars[-1].end = line, at[0]
                self.bars.append(Bar(meter=self.meter, opened_by=line))
        if self.bars[-1].empty:
            self.bars[-1].start = at[1]
            if BOUNDARY.search(line):  # an ending lasts until the next repeat sign or double bar
                self.ending = ""
        if ending:
            self.bar_lines.append(f"[{ending}")
            self.ending = ending
        self.bars[-1].ending = self.ending


    def line_end(self, at: int = 0) -> None:
        """A line that ends (at text position `at`) on a full bar without a bar line closes the bar, as the Essen
        transcriptions write phrase ends (elsewhere a line break inside a bar continues it, as ABC says)."""
        bar = self.bars[-1]
        if bar.meter is not None and bar.length == bar.meter and not self.tuplet_left:
            bar.end = at
            self.bars.append(Bar(meter=self.meter, ending=self.ending))


class TuneReader:
    """One tune read a line at a time: its header (up to the first `K:` line), then its body's bars."""

    def __init__(self) -> None:
        self.meter: Fraction | None = None
        self.unit: Fraction | None = None
        self.meter_known = False
        self.body: BarReader | None = None
        """The body's bar reader, from the first line after the header (None in the header)."""

    def add_line(self, raw_line: str, offset: int = 0) -> None:
        """Read one line of the tune, which starts at text position `offset`."""
        line = raw_line.rstrip()
        match = FIELD_LINE.match(line)
        if match:
            name, value = match.group(1), match.group(2).strip()
            if self.body is not None:
                self.body.field(name, value)
                self.meter_known = self.meter_known or (name == "M" and self.body.meter is not None)
            elif name == "M":
                self.meter = meter_length(value)
                self.meter_known = self.meter is not None
            elif name == "L":
                self.unit = unit_length(value)
            elif name == "K":
                self.body = BarReader(self.meter, self.unit)
            return
        if line.startswith("%") or not line.strip():
            return
        if self.body is None:  # a tune without `K:` starts at its first line of music
            self.body = BarReader(self.meter, self.unit)
        if self.body.bars[-1].start is None:  # the tune's first bar, or one after a line that closed a bar
            self.body.bars[-1].start = offset
        read_line(line, self.body, offset)
        self.body.line_end(offset + len(line))

    def tune(self) -> Tune:
        body = self.body or BarReader(self.meter, self.unit)
        return Tune([bar for bar in body.bars if not bar.empty], body.bar_lines, self.meter_known)


def read_tune(text: str) -> Tune:
    """The bars of one ABC tune (its header up to the first `K:` line, then the body)."""
    reader = TuneReader()
    offset = 0
    for line in text.splitlines(keepends=True):
        reader.add_line(line, offset)
        offset += len(line)
    return reader.tune()


def read_line(line: str, reader: BarReader, offset: int = 0) -> None:
    """Read one line of a tune's body, which starts at text position `offset`, into `reader`."""
    for token in _TOKEN.finditer(line):
        kind = token.lastgroup if token.group("bar") is None else "bar"
        if token.group("skip"):
            continue
        if token.group("inline"):
            reader.field(token.group("inline")[1], token.group("inline")[3:-1].strip())
        elif kind == "bar":
            reader.bar_line(token.group("bar"), token.group("ending") or "",
                            (offset + token.start(), offset + token.end()))
        elif token.group("tuplet"):
            reader.tuplet(int(token.group("p")), token.group("q"), token.group("r"))
        elif token.group("chord"):
            inner = _CHORD_NOTE.findall(token.group("notes"))
            if inner:
                first = _multiplier(inner[0][2])
                reader.event(token.group("chord"), first * _multiplier(token.group("chord_length")))
        elif token.group("note"):
            reader.event(token.group("note"), _multiplier(token.group("length")))
        elif token.group("rest"):
            reader.event(token.group("rest"), _multiplier(token.group("rest_length")))
        elif token.group("bars_rest"):
            bar = reader.bars[-1]
            bar.whole_bars += int(token.group("bars") or 1)
            bar.notes.append(token.group("bars_rest"))
        elif token.group("broken"):
            reader.broken(token.group("broken"))


def _at_boundary(bar: Bar) -> bool:
    """A bar next to a repeat sign, double bar or repeat ending, where ABC writes the halves of a split bar."""
    return bool(bar.ending or BOUNDARY.search(bar.opened_by) or BOUNDARY.search(bar.closed_by))


def all_bars_full(tune: Tune) -> bool:
    """True when every bar but the first and the last has the meter's length; a bar next to a section
    boundary (repeat sign, double bar, repeat ending) may be shorter, as a pickup's other half is."""
    if not tune.meter_known or len(tune.bars) < 3:
        return False
    for bar in tune.bars[1:-1]:
        if bar.full:
            continue
        if bar.meter is None or bar.length > bar.meter or not _at_boundary(bar):
            return False
    return True


def sections(tune: Tune) -> list[tuple[int, bool]]:
    """(bars, repeated) of each section: bars counted as whole bars, the short halves at its ends summed
    into bars; a second repeat ending is an alternative to the first and not counted again."""
    found: list[tuple[int, bool]] = []
    count, partial, started = 0, Fraction(0), False
    for bar in tune.bars:
        if bar.ending and bar.ending[0] != "1":
            continue
        started = True
        if bar.full:
            count += 1
        elif bar.meter:
            partial += bar.length / bar.meter
        if BOUNDARY.search(bar.closed_by) or bar is tune.bars[-1]:
            found.append((count + round(partial), bar.closed_by.startswith(":")))
            count, partial, started = 0, Fraction(0), False
    return [section for section in found if section[0] > 0] if found or started else []


def is_aabb_8_8(tune: Tune) -> bool:
    """Two sections of 8 bars, each repeated: the commonest form of a dance tune."""
    form = sections(tune)
    return len(form) == 2 and all(bars == 8 and repeated for bars, repeated in form)


def bar_line_pattern(tune: Tune) -> str:
    return " ".join(tune.bar_lines)


def bar_ngrams(tune: Tune, n: int = 4) -> set[str]:
    """Every run of `n` consecutive bars as written (notes only, spaces and decorations dropped)."""
    written = ["".join(bar.notes) for bar in tune.bars if bar.notes]
    return {"|".join(written[i:i + n]) for i in range(len(written) - n + 1)}
