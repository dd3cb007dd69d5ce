"""Infilling with the shipped models (the rest of the piece unchanged, exactly the span's full bars, spans at the
start and the end, pickups) and the fill scorer on a model whose answer is known."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from genseq import api
from genseq.api.infill import fill_scores
from genseq.api.model import TrainedModel
from genseq.errors import ConfigError, InputError
from genseq.lm.config import ModelConfig, to_dict
from genseq.lm.model import LSTMLanguageModel
from genseq.music.spans import MARKER, bar_span
from genseq.tokenizers.text import CharTokenizer

JIG = ("X:1\nM:6/8\nL:1/8\nK:G\n"
       "|:D|GAG GAB|ABA ABd|edd gdd|edB dBA|\nGAG GAB|ABA ABd|edd gdB|AGF G2:|\n"
       "|:B|dgg gag|dgg gbg|dee ege|dee ege|\ndgg gag|dgg gab|age dBA|AGF G2:|\n")
"""A pickup (bar 0), 16 bars, a pickup into the second section and halves of bars at the repeats (bars 8 and 16,
which a fill of bars 5-8 or 13-16 ends in)."""
REEL = ("X:1\nM:4/4\nL:1/8\nK:D\n"
        "|:A2FA DAFA|BAFA d2fd|A2FA DAFA|BEEF E2D2:|\n|:d2fd adfd|g2eg fdec|d2fd adfd|BEEF E2D2:|\n")
"""Eight full bars, no pickup: spans at its very start and end."""
ESSEN = "X:1\nM:3/4\nL:1/4\nK:C\nCDE\nFGA\nBcd\nc3\nBAG\nFED\nC3\n"
"""Bars closed by line ends, as the Essen transcriptions write phrase ends."""
TEXT = ("ROMEO:\nBut soft, what light through yonder window breaks?\n"
        "It is the east, and Juliet is the sun.\n")


@pytest.fixture(scope="module")
def folk() -> TrainedModel:
    return api.load("folk-abc-small")


@pytest.fixture(scope="module")
def shakespeare() -> TrainedModel:
    return api.load("shakespeare-small")


def assert_filled(tune: str, versions: list[str], first: int, last: int) -> None:
    """Every version keeps the tune around the span character for character and holds exactly its bars there, each
    full (the last as long as the span's where that is a section's closing half bar), joined to the bar line after
    it, or to the line's end after spaces (`bar_span` refuses any other bar that is not full)."""
    span = bar_span(tune, first, last)
    rest = tune[span.end:]
    for version in versions:
        again = bar_span(version, first, last)
        assert version[:span.start] == tune[:span.start] and version.endswith(rest), version
        assert not version[span.start:again.start].strip() and not version[again.end:len(version) - len(rest)].strip()
        assert again.last_bar == span.last_bar


@pytest.mark.parametrize(("tune", "first", "last"), [(JIG, 4, 7), (JIG, 1, 2), (JIG, 13, 15), (JIG, 5, 8),
                                                     (JIG, 13, 16), (REEL, 1, 2), (REEL, 7, 8), (ESSEN, 2, 4)])
def test_an_abc_fill_is_exactly_its_full_bars_and_the_rest_is_unchanged(folk, tune, first, last):
    versions = folk.infill(tune, f"{first}-{last}", candidates=4, num_samples=2, seed=first)
    assert len(versions) == 2 and versions[0] != tune
    assert_filled(tune, versions, first, last)


def test_a_tune_with_a_catalogue_header_is_read_as_the_model_learnt_tunes_and_kept_as_written(folk):
    """A Nottingham Music Database tune: its title, source and comment hold symbols folk-abc-small never saw (`%`,
    `J`), which it would refuse; it reads the tune cut down, and the versions keep every line as written."""
    tune = JIG.replace("X:1\n", "X: 41\nT:The Kesh\n% Nottingham Music Database\nS:Jan 1975\n")
    versions = folk.infill(tune, "5-8", candidates=4, num_samples=2, seed=3)
    assert_filled(tune, versions, 5, 8)
    assert all(version.startswith("X: 41\nT:The Kesh\n% Nottingham") for version in versions)


def test_a_text_fill_replaces_exactly_its_characters(shakespeare):
    for first, last in [(20, 60), (1, 12), (len(TEXT) - 9, len(TEXT))]:
        versions = shakespeare.infill(TEXT, (first, last), candidates=4, num_samples=2, seed=1)
        for version in versions:
            assert len(version) == len(TEXT)
            assert version[:first - 1] == TEXT[:first - 1] and version[last:] == TEXT[last:]
    marked = TEXT.replace("what light", MARKER)
    start = marked.index(MARKER)
    (version,) = shakespeare.infill(marked, candidates=4, length=12, seed=1)
    assert version[:start] == marked[:start] and version[start + 12:] == marked[start + len(MARKER):]


def test_bad_spans_and_options_are_refused_before_anything_is_drawn(folk, shakespeare):
    for span, fragment in [("0-2", "bars count from 1"), ("17-18", "outside the tune"), ("4-3", "empty"),
                           ("1-16", "whole tune"), ("8-9", "bar 8 is not a full bar"), ("x", "not a span")]:
        with pytest.raises(InputError, match=fragment):
            folk.infill(JIG, span)
    with pytest.raises(InputError, match="name the bars"):
        folk.infill(JIG)
    with pytest.raises(InputError, match="several tunes"):
        folk.infill(JIG + JIG.replace("X:1", "X:2"), "1-2")
    with pytest.raises(ConfigError, match="beam-size"):
        folk.infill(JIG, "1-2", beam_size=2)
    with pytest.raises(ConfigError, match="only with a"):
        shakespeare.infill(TEXT, "1-4", length=5)
    with pytest.raises(InputError, match="the piece holds 1 symbol"):
        shakespeare.infill(TEXT + "\u266f", "1-4")


# A bigram LSTM built by hand: each state holds the last character, so every probability is known.

CHARS = "abcdexy"
BIGRAMS = {"a": {"b": 0.9, None: 0.1}, "b": {"c": 0.3, "x": 0.7}, "c": {"d": 1.0}, "x": {"y": 1.0},
           "d": {"e": 1.0}, "y": {"a": 0.99, "e": 0.01}, "e": {"a": 1.0}, None: {c: 1 / 7 for c in CHARS}}
"""Next-character probabilities after each character (None: the end of the document). After `ab` the model
prefers `xy` to `cd`, but only `cd` leads on to `e`."""


def bigram_model() -> TrainedModel:
    tokenizer = CharTokenizer(CHARS)
    size = tokenizer.vocab_size
    config = ModelConfig(vocab_size=size, hidden_size=size, num_layers=1, dropout=0.0)
    network = LSTMLanguageModel(config)
    big, h = 30.0, math.tanh(1.0)  # saturated gates: input and output open, forget shut; h = tanh(1) one-hot
    ids = {c: tokenizer.encode(c)[0] for c in CHARS} | {None: tokenizer.end_of_document}
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.zero_()
        network.embedding.weight.copy_(torch.eye(size))
        network.lstm.weight_ih_l0[2 * size:3 * size].copy_(big * torch.eye(size))  # the cell takes the input
        network.lstm.bias_ih_l0[:size] = big
        network.lstm.bias_ih_l0[size:2 * size] = -big
        network.lstm.bias_ih_l0[3 * size:] = big
        network.head.weight.fill_(-big / h)
        for before, after in BIGRAMS.items():
            for char, p in after.items():
                network.head.weight[ids[char], ids[before]] = math.log(p) / h
    payload = {"tokenizer": tokenizer.to_dict(), "model_config": to_dict(config), "model": network.state_dict()}
    return TrainedModel(payload, Path("bigram.pt"))


def test_the_fill_score_reads_what_follows_where_the_left_context_alone_misleads():
    model = bigram_model()
    alone, nothing = fill_scores(model, "ab", ["cd", "xy"], None)
    assert torch.allclose(alone, torch.tensor([math.log(0.3), math.log(0.7)]), atol=1e-3) and not nothing.any()
    fill, rest = fill_scores(model, "ab", ["cd", "xy"], "ea")
    assert torch.allclose(fill, alone)
    expected = [math.log(0.1), math.log(0.01) + math.log(0.1)]  # e, a, then the end of the document after a
    assert torch.allclose(rest, torch.tensor(expected), atol=1e-3)
    (version,) = model.infill(f"ab{MARKER}ea", length=2, candidates=16, seed=0)
    assert version == "abcdea"
