"""Bars of the meter's length kept while an ABC model samples: the bars the judge counts as wrong are masked out.

A character-level folk model writes a bar line when its bar feels done, and at temperature 1.0 half
of the shipped model's tunes have a bar that is not (docs/guide/judging.md). `FullBars`
reads each sample's tune as it grows, with the judge's own bar reader (`music.bars`), and before
each character it removes

- in a bar shorter than the meter: what closes a bar (`|`, and `:`, `[`, `]`, `\\`, which the model
  turns to for a bar line once `|` is gone and which then break the tune's repeats), except in the
  tune's first bar (a pickup) and in a bar after a repeat sign, double bar or ending, which the judge
  allows to be short;
- in a full bar: a new note, rest, chord, tuplet or accidental, and a line break before its bar line (the
  judge closes such a bar at the line's end, as the Essen transcriptions write it, but music21 joins it
  to the next line's first bar and engraves a change of meter);
- a digit, `/`, `>` or `<` that would make the bar longer than the meter;
- an accidental that would make one ABC cannot read (`==`, `^_`, a third `^`: music21 refuses the whole tune);
- a second space in a row, and a blank line (which would end the tune): where the model cannot write
  the bar line it wants, it would otherwise pad the bar with spaces.

Outside the tune body (the header), in a field line, a comment, a chord symbol, a decoration, grace
notes or a chord, and where the meter is unknown, nothing is masked. A bar that has already run over
(a note longer than what was left) may still be closed, and a line break inside a bar continues it,
as ABC says, so a sample always has something to write.
"""

from __future__ import annotations

import copy
from fractions import Fraction

import torch

from genseq.errors import ConfigError
from genseq.lm.sampling import TuneRule
from genseq.music.bars import BOUNDARY, FIELD_LINE, Bar, BarReader, TuneReader, read_line
from genseq.tokenizers import Tokenizer

CLOSING = "|:[]\\"
"""What a model writes to close a bar (`|`, `:|`, `[|`, `|]`, a line continuation `\\`) and, that masked, falls
back to: in a bar short of its meter all are masked, so that what is left adds time."""
NOTE_STARTS = "ABCDEFGabcdefgzxZ^_=(["
"""Characters that start something that takes time (the `[` of a chord; a `[1` ending is written after `|`)."""
LENGTHENING = "0123456789/<>"
"""Characters that change the length of what was just written."""
ACCIDENTALS = "^_="
"""What an accidental is written with: `^` sharp, `_` flat, `=` natural; `^^` and `__` double them."""
WIDEST = "9>"
"""The characters that lengthen the bar most: `9` after a note's length (a digit after `/` shortens it), `>`."""
AFTER_NOTE = set("ABCDEFGabcdefgzx]',0123456789/")
"""Last characters after which a lengthening character changes a length (else it cannot, and is not checked)."""


class TuneSoFar:
    """One sample's tune so far: the judge's reader after the last complete line, and the line being written."""

    def __init__(self) -> None:
        self.reader, self.line = TuneReader(), ""

    def add(self, char: str) -> None:
        if char == "\n":
            self.reader.add_line(self.line)
            self.line = ""
        else:
            self.line += char

    def read(self, tail: str = "") -> BarReader | None:
        """The bar reader as it would be if `tail` came next: a copy, which holds the bars of the line being written
        (the first continues the tune's last); None in the header, a field line, or inside something that takes
        no time (see the module docstring)."""
        line, body = self.line + tail, self.reader.body
        if body is None or FIELD_LINE.match(line) or _inside_something(line):
            return None
        reader = copy.copy(body)
        reader.bar_lines = []  # the copy's own: reading the tail must not touch the tune's
        last = reader.bars[-1]
        reader.bars = [Bar(last.length, last.meter, last.opened_by, last.closed_by, last.ending, list(last.notes),
                           last.whole_bars)]
        read_line(line, reader)
        return reader

    def bar_with(self, tail: str = "") -> tuple[Bar, bool] | None:
        """The bar being written if `tail` came next, and whether it is the tune's first bar; None where the
        rules do not apply (see the module docstring)."""
        reader = self.read(tail)
        if reader is None:
            return None
        bar = reader.bars[-1]
        if bar.meter is None or bar.whole_bars:
            return None
        earlier = any(not bar.empty for bar in self.reader.body.bars[:-1])
        return bar, not earlier and len(reader.bars) == 1

    def bars_begun(self, reader: BarReader) -> int:
        """How many bars the tune has begun, the one being written included, given `read()`'s reader."""
        return len(self.reader.body.bars) - 1 + len(reader.bars)


def _inside_something(line: str) -> bool:
    """Whether the line ends inside a comment, chord symbol or annotation, decoration, grace notes or a chord."""
    if "%" in line or line.count('"') % 2 or line.count("!") % 2 or line.count("+") % 2:
        return True
    if line.rfind("{") > line.rfind("}"):
        return True
    opened = line.rfind("[")
    after = line[opened + 1:opened + 2]
    return opened > line.rfind("]") and (not after or (after != "|" and not after.isdigit()))


class FullBars(TuneRule):
    """The rules above for a batch of samples of an ABC model: `start`, then `mask` and `advance` each step."""

    new_tune = TuneSoFar

    def __init__(self, tokenizer: Tokenizer):
        if tokenizer.kind != "abc":
            raise ConfigError(f"--full-bars keeps the bars of ABC tunes at their meter's length; this is a "
                              f"{tokenizer.kind} model (sample it without --full-bars)")
        self.end = tokenizer.end_of_document
        self.char_of = {token: tokenizer.decode([token]) for token in range(tokenizer.vocab_size)}
        known = {char: token for token, char in self.char_of.items() if len(char) == 1}
        self.closing = [known[c] for c in CLOSING if c in known]
        self.space, self.newline = known.get(" "), known.get("\n")
        self.note_starts = [known[c] for c in NOTE_STARTS if c in known]
        self.lengthening = [(c, known[c]) for c in LENGTHENING if c in known]
        self.accidentals = {c: known[c] for c in ACCIDENTALS if c in known}
        self.tunes = [self.new_tune()]

    def mask(self, logits: torch.Tensor) -> None:
        """Set the logits [batch, vocab] of the characters the rules forbid to -inf, in place."""
        for row, tune in enumerate(self.tunes):
            now = tune.bar_with()
            if now is None:
                continue
            bar, first = now
            if bar.length < bar.meter and not bar.empty and not first \
                    and not (bar.ending or BOUNDARY.search(bar.opened_by)):
                logits[row, self.closing] = float("-inf")
            if tune.line and tune.line[-1] in ACCIDENTALS:
                doubled = tune.line[-2:] in ("^^", "__")
                for char, token in self.accidentals.items():  # `^^` and `__` only
                    if doubled or char != tune.line[-1] or char == "=":
                        logits[row, token] = float("-inf")
            if tune.line.endswith(" ") and self.space is not None:
                logits[row, self.space] = float("-inf")
            if not tune.line and self.newline is not None:  # a blank line would end the tune
                logits[row, self.newline] = float("-inf")
            if bar.length >= bar.meter:
                logits[row, self.note_starts] = float("-inf")
                if not bar.empty and self.newline is not None:  # a full bar ends with its bar line, not the line
                    logits[row, self.newline] = float("-inf")
            if tune.line and tune.line[-1] in AFTER_NOTE:
                limit = max(bar.length, bar.meter)
                if all(not _over(tune.bar_with(char), limit) for char in WIDEST):
                    continue  # nothing lengthens more than these two
                for char, token in self.lengthening:
                    if _over(tune.bar_with(char), limit):
                        logits[row, token] = float("-inf")


def _over(found: tuple[Bar, bool] | None, limit: Fraction) -> bool:
    return found is not None and found[0].length > limit
