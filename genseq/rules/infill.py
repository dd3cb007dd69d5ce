"""What a fill may write while it is drawn (`TrainedModel.infill`): a span of an ABC tune drawn again in exactly its
number of full bars, or a span of a text, without ever ending the piece.

`FillBars` is `FullBars` with the fill's own ends. Its bars are all full, the first one too (which `FullBars` lets
a tune's first bar, or a bar after a repeat sign, leave short), and they are parted by plain bar lines: no repeat
sign, double bar, ending or line continuation (`:`, `||`, `|]`, `|1`, `\\`), which would let the next bar be a half
and change the tune's form; no field line either, which would change its meter. The fill joins the bar line the
tune goes on with, so it never writes the end of the piece, except in its last bar once that is full: there the end
of the fill takes the place of the bar line the model would write (`|`, or the `:` of `:|`), with its probability,
and the bar lines themselves are masked. Drawn this way, a fill ends where the model closes its last bar.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fractions import Fraction

import torch

from genseq.errors import ConfigError
from genseq.music.bars import BarReader
from genseq.rules.full_bars import FullBars, TuneSoFar
from genseq.tokenizers import Tokenizer

NEVER_IN_A_FILL = ":\\"
"""Characters a fill never writes: `:` starts repeat signs and field lines, `\\` continues a line."""
_AFTER_BAR_LINE = re.compile(r"[|\[:]\s*\d*$")
"""A line that ends with a bar line (or `[`), where a digit would make a repeat ending."""


class _FillTune(TuneSoFar):
    """A tune whose fill ends in a section's closing half bar: that bar is read as if the meter were its length, so
    the full-bars rule holds it to exactly that length."""

    last_number = 0
    """How many bars the tune has begun once it is writing the fill's last bar (0: not set)."""
    last_bar: Fraction | None = None

    def read(self, tail: str = "") -> BarReader | None:
        reader = super().read(tail)
        if reader is not None and self.last_bar is not None and self.bars_begun(reader) == self.last_number:
            reader.bars[-1].meter = self.last_bar  # the reader's own copy of the bar
        return reader


class FillBars(FullBars):
    """`bars` full bars after the context, then the end of the fill (see the module docstring); the last bar
    `last_bar` whole notes long instead where the span ends in a section's closing half bar."""

    new_tune = _FillTune

    def __init__(self, tokenizer: Tokenizer, bars: int, last_bar: Fraction | None = None):
        super().__init__(tokenizer)
        self.bars, self.last_bar = bars, last_bar
        known = {char: token for token, char in self.char_of.items() if len(char) == 1}
        self.never = [known[c] for c in NEVER_IN_A_FILL if c in known]
        self.digits = [known[c] for c in "0123456789" if c in known]
        self.doubling = [known[c] for c in "|]" if c in known]  # after `|` these make `||` or `|]`
        self.bar_line_starts = [known[c] for c in "|:" if c in known]
        self.begun = 0

    def start(self, context: Sequence[int], batch: int) -> None:
        super().start(context, batch)
        tune = self.tunes[0]
        reader = tune.read()
        if reader is None:
            raise ConfigError("a fill starts in a tune's body, after a bar line or at the start of a line")
        self.begun = tune.bars_begun(reader)
        for each in self.tunes:
            each.last_number, each.last_bar = self.begun + self.bars - 1, self.last_bar

    def mask(self, logits: torch.Tensor) -> None:
        """Full bars (`FullBars.mask`), then the fill's own ends, in place."""
        super().mask(logits)
        for row, tune in enumerate(self.tunes):
            short = ending = empty = False
            reader = tune.read()
            if reader is not None:
                bar = reader.bars[-1]
                grown = bar.whole_bars > 0 or (bar.meter is not None and bar.length >= bar.meter)
                short = not bar.empty and not grown  # no short bar in a fill, wherever it starts
                empty = bar.empty  # nor an empty one: no bar line opens a line after one that closed the last
                ending = grown and tune.bars_begun(reader) - self.begun + 1 >= self.bars
            # the end of the fill stands for the bar line that would close its last bar (`|`, `:|`)
            end = torch.logsumexp(logits[row, self.bar_line_starts], 0) if ending else float("-inf")
            logits[row, self.never] = float("-inf")
            if _AFTER_BAR_LINE.search(tune.line):
                logits[row, self.digits] = float("-inf")
                if tune.line.rstrip()[-1:] in "|[:":
                    logits[row, self.doubling] = float("-inf")
            if short or ending:
                logits[row, self.closing] = float("-inf")
            if empty:
                logits[row, self.bar_line_starts] = float("-inf")
            logits[row, self.end] = end


class NoEnd:
    """A fill of a text never ends the document: the end-of-document token is masked at every step."""

    def __init__(self, tokenizer: Tokenizer):
        self.end = tokenizer.end_of_document

    def start(self, context: Sequence[int], batch: int) -> None:
        """Nothing to read: the rule is the same at every step."""

    def select(self, rows: torch.Tensor) -> None:
        """Nothing kept per sample."""

    def advance(self, tokens: torch.Tensor) -> None:
        """Nothing to follow."""

    def mask(self, logits: torch.Tensor) -> None:
        logits[:, self.end] = float("-inf")


__all__ = ["FillBars", "NoEnd"]
