"""What a fill may write: an ABC fill's full bars, plain bar lines and its end where its last bar closes; a text
fill never ends the document."""

from __future__ import annotations

import math
import string

import torch

from genseq.rules.infill import FillBars, NoEnd
from genseq.tokenizers.abc import AbcTokenizer
from genseq.tokenizers.text import CharTokenizer

ABC = AbcTokenizer(string.printable)
LEFT = "X:1\nM:4/4\nL:1/8\nK:G\nD|GABc dedB|"
EOD = ABC.token_name(ABC.end_of_document)


def masked_in_fill(left: str, fill: str, bars: int = 2) -> tuple[set[str], torch.Tensor]:
    """What FillBars masks after `fill` was drawn after `left`, and the logits it leaves (all 0 before)."""
    rule = FillBars(ABC, bars)
    rule.start(ABC.encode(left), 1)
    for token in ABC.encode(fill):
        rule.advance(torch.tensor([token]))
    logits = torch.zeros(1, ABC.vocab_size)
    rule.mask(logits)
    masked = {ABC.decode([token]) or ABC.token_name(token) for token in torch.isinf(logits[0]).nonzero()[:, 0].tolist()}
    return masked, logits[0]


def test_a_fill_writes_plain_bar_lines_between_full_bars_and_never_ends_the_tune_early():
    masked, _ = masked_in_fill(LEFT, "")
    assert {":", "|", "]", "1", "\\", EOD} <= masked and not {"A", "[", " ", "\n"} & masked  # no |:, ||, |], |1
    masked, _ = masked_in_fill(LEFT, "dcBA G2F")
    assert {"|", ":", EOD} <= masked and "G" not in masked  # a short bar is not closed
    masked, _ = masked_in_fill(LEFT, "dcBA G2FG")
    assert "|" not in masked and EOD in masked and "A" in masked  # full: a bar line, not the end (one bar of two)


def test_the_fill_ends_where_the_model_would_close_its_last_bar():
    masked, logits = masked_in_fill(LEFT, "dcBA G2FG|ABcd efge")
    assert {"|", "A"} <= masked and EOD not in masked
    # with every logit 0 before the rules, the end holds the mass of the two ways to close the bar: | and :|
    assert math.isclose(logits[ABC.end_of_document].item(), math.log(2), abs_tol=1e-6)


def test_a_fill_at_the_start_of_a_line_writes_no_empty_bar():
    masked, _ = masked_in_fill(LEFT.rstrip("|") + ":|\n", "")  # `|` here would open an empty bar before bar 1
    assert {"|", ":"} <= masked and not {"A", "[", " "} & masked


def test_a_fill_at_the_start_of_a_tune_has_a_full_first_bar():
    masked, _ = masked_in_fill("X:1\nM:4/4\nL:1/8\nK:G\n", "GAB", bars=1)
    assert "|" in masked  # FullBars lets a first bar be a pickup; a fill's first bar is full


def test_a_text_fill_never_ends_the_document():
    text = CharTokenizer("abc ")
    rule = NoEnd(text)
    rule.start(text.encode("abc"), 2)
    logits = torch.zeros(2, text.vocab_size)
    rule.mask(logits)
    assert torch.isinf(logits[:, text.end_of_document]).all() and torch.isinf(logits).sum() == 2
