"""Infilling: a span of a piece drawn again so that it joins what follows, the rest kept character for character.

The span is bars of an ABC tune, characters of a text, or a `[...]` marker in a text (`music.spans`); beats of a
chorale are filled by `api.infill_voices` the same way, from a token template, and bars or seconds of a MIDI piece
by `api.infill_midi`, on the model's grid. The LSTM
reads left to right, so the fill is drawn as candidates that continue what comes before the span, under the rules
in force (`rules.infill`: an ABC fill is exactly the span's number of full bars and joins the bar line after it; a
text fill is as many characters as the span, or as `length` for a marker). Each candidate is then scored by how
likely the model finds the fill and everything after it, read in one teacher-forced pass, the candidates as one
batch (`sampling.token_log_probs`): log p(rest | before, fill). The best `num_samples` are returned, as the
harmoniser keeps its best settings. A fill that fits what follows (a cadence that leads into the next phrase, a
sentence whose next words are already written) makes the rest likely, so it ranks first. The candidates are drawn
from p(fill | before), so ranking them by p(rest | before, fill) keeps those most likely under p(fill | before,
rest): likelihood weighting. Ranking by the joint p(fill + rest | before) instead counts the draw's own likelihood
twice, and used what follows far less in the cloze benchmark (`benchmarks/infill.py`, docs/guide/infill.md).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from genseq.api import infill_midi, infill_voices
from genseq.console import say
from genseq.corpora.sources import builtin_corpora
from genseq.errors import ConfigError, GenseqError, InputError
from genseq.lm.config import SampleConfig, SampleOptions
from genseq.lm.sampling import TokenRule, generate, token_log_probs
from genseq.music.abc_header import UncleanTune, around_span_as_learnt
from genseq.music.spans import MARKER_LENGTH, Span, bar_span, char_span, marker_span, parse_span
from genseq.rules import CANDIDATES
from genseq.rules.infill import FillBars, NoEnd

if TYPE_CHECKING:
    from genseq.api.model import TrainedModel

BAR_CHARACTERS = 48
"""Characters allowed per bar of an ABC fill beyond the span's own: a candidate still writing past them is dropped."""
NOT_FOR_INFILL = ("beam_size", "stop_at_end", "voice_leading")
"""Sampling options a fill takes none of: it draws candidates and keeps the best, ends where its span does."""
_TUNE_START = re.compile(r"^X:", re.MULTILINE)


SPAN_UNITS = {"abc": ("bars",), "char": ("chars",), "voices": ("beats",), "midi": ("bars", "seconds"),
              "beat": ("bars", "seconds")}
"""What a span to draw again counts, by the kind of model (the first is the default)."""
_MODELS = {"abc": "ABC", "char": "text", "voices": "chorale", "midi": "MIDI (performance)", "beat": "MIDI (beat grid)"}
_PIECES = {"abc": "ABC tunes", "char": "texts", "voices": "chorales", "midi": "MIDI performances",
           "beat": "MIDI pieces on a beat grid"}
_EXAMPLES = {"bars": "--bars 5-8", "chars": "--chars 120-180 or mark the place with [...]",
             "beats": "--beats 9-16 (counted from 1 at the start of the piece)", "seconds": "--seconds 12-20"}


def span_option(kind: str, bars: str | None = None, chars: str | None = None, beats: str | None = None,
                seconds: str | None = None) -> tuple[str | None, str | None]:
    """The one span of the command line (`--bars`, `--chars`, `--beats`, `--seconds`) and what it counts, checked
    against what the kind of model draws again (`SPAN_UNITS`)."""
    given = {unit: value for unit, value in (("bars", bars), ("chars", chars), ("beats", beats),
                                             ("seconds", seconds)) if value is not None}
    if len(given) > 1:
        raise InputError(f"give one span, not {' and '.join(f'--{unit}' for unit in given)}")
    units = SPAN_UNITS[kind]
    for unit in given:
        if unit not in units:
            raise InputError(f"--{unit} is not for {_PIECES[kind]}; this {_MODELS[kind]} model draws "
                             f"{' or '.join(units)} again: give {' or '.join(_EXAMPLES[u] for u in units)}")
    return next(iter(given.values()), None), next(iter(given), None)


def read_piece(piece: str | Path) -> str:
    """The text of a piece: a string as given, or the text of a file named by a Path."""
    if not isinstance(piece, Path):
        return piece
    if not piece.is_file():
        raise InputError(f"{piece}: no such file")
    try:
        return piece.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"{piece} is not UTF-8 text (byte {err.start}); give a UTF-8 file") from None


def find_span(kind: str, text: str, span: str | tuple[int, int] | None) -> Span:
    """Where the fill goes: bars (`5-8`) of an ABC model's tune; characters (`120-180`, counted from 1) of a text
    model's text, or its `[...]` marker where `span` is None."""
    if kind == "abc":
        if span is None:
            raise InputError("name the bars to draw again, e.g. --bars 5-8")
        if len(_TUNE_START.findall(text)) > 1:
            raise InputError("the piece holds several tunes (X: lines); give one")
        return bar_span(text, *parse_span(span, "--bars"))
    if kind == "char":
        return marker_span(text) if span is None else char_span(text, *parse_span(span, "--chars"))
    raise ConfigError(f"a {kind} model's piece is not text: its span is found from its notes (`piece_and_span`)")


def check_unit(kind: str, unit: str | None) -> str:
    """What the span counts: `unit` where the kind of model draws that again, else its first (`SPAN_UNITS`)."""
    if unit is None:
        return SPAN_UNITS[kind][0]
    if unit not in SPAN_UNITS[kind]:
        raise InputError(f"a span of {unit} is not for {_PIECES[kind]}; this {_MODELS[kind]} model draws "
                         f"{' or '.join(SPAN_UNITS[kind])} again")
    return unit


def piece_and_span(model: TrainedModel, piece: Any, span: str | tuple[Any, Any] | None,
                   voices: str | Sequence[str] | None = None, unit: str | None = None) -> tuple[Any, Span]:
    """The piece (a text as read; a chorale as given; a MIDI piece's notes) and where its fill goes (`find_span`,
    `infill_voices.check`, `infill_midi.find_time_span`), checked before anything is drawn: what the model reads of
    it (`as_read`) holds only symbols it knows, the voices named are the model's, the span counts what the model
    draws again (`check_unit`)."""
    kind = model.tokenizer.kind
    unit = check_unit(kind, unit)
    if voices is not None and kind != "voices":
        raise InputError(f"--voices names voices of a chorale; this {kind} model has none")
    if kind == "voices":
        return piece, infill_voices.check(model, piece, span, voices)
    if model.tokenizer.reads_midi:
        score = infill_midi.read_midi_piece(model.tokenizer, piece, "MIDI", "bars or seconds")
        return score, infill_midi.find_time_span(model.tokenizer, score, span, unit)
    text = read_piece(piece)
    found = find_span(kind, text, span)
    model.encode_primer("".join(as_read(model, text, found)), "piece")
    return text, found


def as_read(model: TrainedModel, text: str, span: Span) -> tuple[str, str]:
    """What comes before and after the span as the model reads them: a text as written; a tune cut down as the
    built-in folk corpus cuts tunes (`abc_header.around_span_as_learnt`: no titles, sources or comments), which is
    how the ABC models learnt tunes, so a tune from a collection's catalogue reads as one of them. The fill goes
    into the text as written either way."""
    left, right = text[:span.start], text[span.end:]
    if model.tokenizer.kind != "abc":
        return left, right
    try:
        return around_span_as_learnt(left, right, builtin_corpora()["folk-abc"]["fields"])
    except UncleanTune as reason:
        raise InputError(f"the tune cannot be read {reason}; give it an M: and a K: line before its music") from None


def fill_config(model: TrainedModel, span: Span, options: SampleOptions) -> SampleConfig:
    """The sampler's settings for one fill: the model's defaults and the options given, for one sample per
    candidate (the caller widens the batch), long enough for the span."""
    for name in NOT_FOR_INFILL:
        if options.get(name) is not None:
            raise ConfigError(f"infilling takes no {name.replace('_', '-')}: it draws candidates and keeps the best")
    if options.get("full_bars") is False:
        raise ConfigError("an ABC fill is always written in full bars; it takes no --free-bars")
    if options.get("length") is not None and span.size is not None:
        raise ConfigError("a fill is as long as its span; a length is given only with a [...] marker")
    length = options.get("length") or MARKER_LENGTH
    if model.tokenizer.kind == "voices":
        length = infill_voices.beats_length(model.tokenizer, span)
    elif model.tokenizer.reads_midi:
        length = infill_midi.fill_length(model.tokenizer, span)
    elif span.size is not None:
        length = span.size if model.tokenizer.kind == "char" else BAR_CHARACTERS * span.size + span.end - span.start
    given = {k: v for k, v in options.items() if k not in ("length", "full_bars", *NOT_FOR_INFILL)}
    return model.sample_config(**given, length=length, stop_at_end=model.tokenizer.kind == "abc",
                               full_bars=model.tokenizer.kind == "abc" or None)


def fill_rule(model: TrainedModel, span: Span) -> TokenRule:
    """What the fill may write: full bars to the span's end (ABC), no end of the document (text)."""
    if model.tokenizer.kind == "abc":
        assert span.size is not None
        return FillBars(model.tokenizer, span.size, span.last_bar)
    return NoEnd(model.tokenizer)


def infill(model: TrainedModel, piece: Any, span: str | tuple[Any, Any] | None = None,
           candidates: int = CANDIDATES, on_step: Callable[[torch.Tensor], None] | None = None,
           voices: str | Sequence[str] | None = None, unit: str | None = None, **options: Any) -> list[Any]:
    """See `TrainedModel.infill`."""
    if candidates < 1:
        raise ConfigError(f"--candidates must be positive, got {candidates}")
    text, found = piece_and_span(model, piece, span, voices, unit)
    config = fill_config(model, found, SampleOptions(**options))
    if model.tokenizer.kind == "voices":
        return infill_voices.infill_voices(model, piece, span, voices, config, candidates, on_step)
    if model.tokenizer.reads_midi:
        return infill_midi.infill_midi(model, text, found, config, candidates, on_step)
    left, right = as_read(model, text, found)
    end = model.tokenizer.end_of_document
    prelude = list(model.payload.get("prelude") or [end])
    kept = config.num_samples
    shown = None if on_step is None else lambda tokens: on_step(tokens[:kept])
    drawn = dataclasses.replace(config, num_samples=kept * candidates)
    rows = generate(model.network, model.tokenizer.encode(left), drawn, end, shown, prelude=prelude,
                    rule=fill_rule(model, found))
    fills = [model.tokenizer.decode(row) for row in rows]
    scores = fill_scores(model, left, fills, right)[1]
    fits = torch.tensor([model.tokenizer.kind != "abc" or _fits(text, found, fill) for fill in fills])
    if not fits.any():
        raise GenseqError(f"none of the {len(fills)} candidates finished its {found.size} bars in the length allowed; "
                          "draw more with --candidates or another --seed")
    if fits.sum() < kept:
        say(f"only {int(fits.sum())} of {len(fills)} candidates closed their {found.size} bars in the length allowed: "
            f"{int(fits.sum())} version(s) written")
    order = scores.masked_fill(~fits, float("-inf")).argsort(descending=True)[:min(kept, int(fits.sum()))]
    return [text[:found.start] + fills[i] + text[found.end:] for i in order.tolist()]


def fill_scores(model: TrainedModel, left: str, fills: list[str], right: str | None,
                ends: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """For each fill [fills] between `left` and `right`, in one batch and one pass: log p(fill | left), what a model
    reading only what comes before ranks fills by, and log p(right | left, fill), how well the fill leads into what
    follows, which `infill` ranks by (with the end of the document after `right` where the piece `ends` there, not
    for an excerpt; 0 where `right` is None). In nats."""
    end = model.tokenizer.end_of_document
    context = [*(model.payload.get("prelude") or [end]), *model.tokenizer.encode(left)]
    after = [] if right is None else [*model.tokenizer.encode(right), *[end] * ends]
    encoded = [model.tokenizer.encode(fill) for fill in fills]
    written = token_log_probs(model.network, context, [[*ids, *after] for ids in encoded])
    in_fill = torch.arange(written.shape[1])[None] < torch.tensor([len(ids) for ids in encoded])[:, None]
    fill = written.masked_fill(~in_fill, 0.0).sum(1)
    return fill, written.sum(1) - fill


def _fits(tune: str, span: Span, fill: str) -> bool:
    """Whether a drawn ABC fill holds its span's bars, all full (the last as long as the span's where that is a closing
    half bar), and ends where the rest of the tune starts (or only spaces part them)."""
    assert span.size is not None
    filled = tune[:span.start] + fill + tune[span.end:]
    try:
        again = bar_span(filled, span.first, span.first + span.size - 1)
    except InputError:
        return False
    # a bar closed by its line's end ends before the spaces that close the line
    end = span.start + len(fill)
    # the bars start where the fill's music does, after any spaces or line break it opens with
    return (span.start <= again.start and not filled[span.start:again.start].strip() and again.end <= end
            and not filled[again.end:end].strip() and again.last_bar == span.last_bar)


__all__ = ["BAR_CHARACTERS", "SPAN_UNITS", "check_unit", "fill_config", "fill_scores", "find_span", "infill",
           "piece_and_span", "read_piece", "span_option"]
