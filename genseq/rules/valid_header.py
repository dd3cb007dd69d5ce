"""A valid header for every tune an ABC model samples: one `M:` and at most one `L:`, with a meter and a unit its
corpus writes, before `K:`.

A model trained on catalogue entries writes headers such as `M: 2/6`, `L: 1/17` or two `M:` lines, and even one
trained on clean tunes may at a high temperature. `ValidHeader` follows each sample's tune (from its start, or
from the end-of-document token) and, before each character of its header (up to the line that starts with
`K:`), masks

- the end of the tune;
- at the start of a line: what cannot start a field line (a field's letter or a comment's `%`), such as a blank
  line; `M` and `L` once the header has them; `K`, which ends the header, before `M`;
- after a field's letter: anything but its `:`;
- in an `M:` or `L:` line (the body's changes of meter and unit too): what does not continue a meter or a unit of
  the model's corpus (`AbcTokenizer.meters`, `units`), and the line's end until it holds one.

The `L:` a header leaves out is written after sampling, as ABC 2.1 defines it (`AbcTokenizer.finish_sample`).
A primer's own lines are read, never changed. A header's other fields are free, so a model that writes field
lines and never `K:` (one trained for a few steps, at a high temperature) may still run out of length in it.
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Iterable

import torch

from genseq.errors import ConfigError
from genseq.lm.sampling import TuneRule
from genseq.music.abc_header import FIELD_LINE
from genseq.tokenizers import Tokenizer

COMMON_METERS = ("C", "C|", "none", *(f"{beats}/{unit}" for unit in (1, 2, 4, 8, 16) for beats in range(1, 13)))
"""The meters allowed to a model saved before tokenizers kept their corpus's (`AbcTokenizer.meters` None): free
meter, common and cut time, and up to 12 beats of a power-of-two unit (`2/6` is no meter)."""
COMMON_UNITS = tuple(f"1/{2 ** n}" for n in range(7))
"""The unit note lengths allowed to such a model: 1/1 to 1/64 (`1/17` is no unit)."""
ONCE = ("M", "L")
"""Fields whose values the rule keeps to the corpus's, each written once in a header."""


class _Tune:
    """One sample's tune so far: the line being written, whether the header goes on, which of `ONCE` it has."""

    def __init__(self) -> None:
        self.line, self.in_header, self.written = "", True, frozenset()

    def add(self, char: str) -> None:
        if char != "\n":
            self.line += char
            return
        if self.in_header:
            field = FIELD_LINE.match(self.line)
            if field:
                self.written |= {field.group(1)} & set(ONCE)
                self.in_header = field.group(1) != "K"
            elif self.line.strip() and not self.line.startswith("%"):  # music before any `K:`: the body began
                self.in_header = False
        self.line = ""


class ValidHeader(TuneRule):
    """The rules above for a batch of samples of an ABC model: `start`, then `mask` and `advance` each step."""

    new_tune = _Tune

    def __init__(self, tokenizer: Tokenizer):
        if tokenizer.kind != "abc":
            raise ConfigError(f"a valid ABC header is for ABC models; this is a {tokenizer.kind} model")
        self.end = tokenizer.end_of_document
        self.char_of = {token: tokenizer.decode([token]) for token in range(tokenizer.vocab_size)}
        values = {"M": COMMON_METERS if tokenizer.meters is None else tokenizer.meters,
                  "L": COMMON_UNITS if tokenizer.units is None else tokenizer.units}
        starts = set(string.ascii_letters) | {"%"}
        self.line_start = {}
        for size in range(len(ONCE) + 1):
            for written in map(frozenset, itertools.combinations(ONCE, size)):
                closed = {name for name in ONCE if name in written or not values[name]}  # or the corpus has none
                if values["M"] and "M" not in written:
                    closed.add("K")  # the meter comes first
                self.line_start[written] = self._all_but(starts - closed)
        self.after_letter = self._all_but({":"})
        self.end_only = torch.tensor([self.end])  # a tune does not end before its `K:` line
        self.values = {name: self._continuations(allowed) for name, allowed in values.items()}
        self.tunes = [self.new_tune()]

    def _continuations(self, values: Iterable[str]) -> dict[str, torch.Tensor | None]:
        """For each start of a field's value: the mask of what does not continue it into one of `values` (or end
        the line after one). A space may come first, as some corpora write `M: 6/8`."""
        following: dict[str, set[str]] = {}
        for value in {*values, *(" " + value for value in values)}:
            for cut in range(len(value) + 1):
                following.setdefault(value[:cut], set()).add(value[cut] if cut < len(value) else "\n")
        return {start: self._all_but(chars) for start, chars in following.items()}

    def _all_but(self, chars: Iterable[str]) -> torch.Tensor | None:
        """The tokens [n] of every character but `chars`, with the end of the tune and the special tokens; None
        where the vocabulary holds none of `chars` (the rule then masks nothing: a sample always has something to
        write)."""
        chars = set(chars)
        allowed = [token != self.end and self.char_of[token] in chars for token in range(len(self.char_of))]
        if not any(allowed):
            return None
        return torch.tensor([token for token, ok in enumerate(allowed) if not ok])

    def mask(self, logits: torch.Tensor) -> None:
        """Set the logits [batch, vocab] of the characters the rules forbid to -inf, in place."""
        for row, tune in enumerate(self.tunes):
            forbidden = self._forbidden(tune)
            if forbidden is not None:
                logits[row, forbidden] = float("-inf")

    def _forbidden(self, tune: _Tune) -> torch.Tensor | None:
        line = tune.line
        if line[:2] in ("M:", "L:"):
            return self.values[line[0]].get(line[2:], self.end_only if tune.in_header else None)
        if not tune.in_header:
            return None
        if not line:
            return self.line_start[tune.written]
        if len(line) == 1 and line in string.ascii_letters:
            return self.after_letter
        return self.end_only
