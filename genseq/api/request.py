"""One sampling request as a user makes it, to the CLI or the studio: the sampler's settings and what joins them
to music (a primer or primer file, a melody, a tune header, transposition, where the samples go).

None is "not chosen" everywhere, so the model's own defaults win (`TrainedModel.sample_config`). Every rule
between the options lives in `SampleRequest.prepare`, with the one-line messages both front ends show; they only
fill a request in and pass it on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from genseq.api import infill
from genseq.api.export import Outputs
from genseq.api.model import TrainedModel
from genseq.errors import InputError
from genseq.lm.config import SampleConfig, SampleOptions, to_dict
from genseq.music import controls
from genseq.music.spans import Span
from genseq.rules.harmonize import CANDIDATES

RULE_OPTIONS = ("voice_leading", "full_bars")
"""Sampling rules: recorded as chosen (None: the model's kind decides), since a rule of another kind means nothing."""


@dataclass
class SampleRequest:
    """What to draw and what to do with it; `prepare(model)` checks it against a model."""

    options: SampleOptions = field(default_factory=SampleOptions)
    """The sampler's settings (`SampleConfig` fields); a key left out or None is not chosen."""
    primer: Any = None
    """Text the samples continue, or a document the model reads (a PrettyMIDI for a MIDI model)."""
    primer_file: Path | None = None
    """A file the samples continue, read as the model reads primers (`TrainedModel.read_primer`)."""
    melody: Any = None
    """A melody a voices model harmonises (`TrainedModel.harmonize`): a .abc or one-track .mid file, ABC text, a
    Score. It is the top voice from the start, so it takes no primer or tune header."""
    piece: str | Path | None = None
    """A piece to draw a span of again (`TrainedModel.infill`): its text, or a Path to read. What surrounds the span
    is the context, so it takes no primer, melody or tune header."""
    span: str | tuple[int, int] | None = None
    """With a piece: the bars (ABC and MIDI models), beats (chorale models), seconds (MIDI models, with `unit`) or
    characters (text models) to draw again; None: a text's `[...]`."""
    unit: str | None = None
    """What `span` counts where a model draws more than one kind of span (MIDI models: "bars" or "seconds"); None:
    the model's first (`infill.SPAN_UNITS`)."""
    voices: str | None = None
    """With a chorale to fill: the voices drawn again (`alto,tenor`); the others are kept. None: all of them."""
    candidates: int = CANDIDATES
    """With a melody or a piece: settings or fills drawn for each one kept (`TrainedModel.harmonize`, `infill`)."""
    meter: str | None = None
    key: str | None = None
    unit_length: str | None = None
    """ABC models: a tune header that becomes the primer (`controls.folk_primer`)."""
    transpose: int = 0
    """Semitones the written samples move (music models)."""
    output: Path | None = None
    """A text file the samples go into (without `output_dir`)."""
    output_dir: Path | None = None
    """A folder the samples go into as files; None: they are text (printed or written to `output`)."""
    outputs: Outputs = field(default_factory=Outputs)
    """What is written beside each sample in `output_dir`."""
    force: bool = False
    """Overwrite existing output files."""

    def prepare(self, model: TrainedModel) -> PreparedSample:
        """The request checked against `model` before anything is drawn: every rule between the options, the
        sampler's settings (the model's own defaults where none is chosen), the primer read or built and encoded.
        A GenseqError names the fix in one line."""
        if self.primer is not None and self.primer_file is not None:
            raise InputError("give --primer or --primer-file, not both")
        header = {"meter": self.meter, "key": self.key, "unit_length": self.unit_length}
        if self.melody is not None and (self.primer, self.primer_file, *header.values()) != (None,) * 5:
            raise InputError("--melody is the piece's top voice from its start: give it without a primer, --meter, "
                             "--key or --unit-length")
        if self.voices is not None and self.piece is None:
            raise InputError("--voices names the voices of a chorale to draw again: give it with a piece to fill")
        if self.piece is not None:  # the piece is read once, its span found before any other check
            if (self.primer, self.primer_file, self.melody, *header.values()) != (None,) * 6:
                raise InputError("a piece to fill is its own context: give it without a primer, --melody, --meter, "
                                 "--key or --unit-length")
            piece, span = infill.piece_and_span(model, self.piece, self.span, self.voices, self.unit)
        if self.melody is not None and self.output_dir is None:
            raise InputError("a harmonised melody is written as .mid files: give --output-dir DIR")
        outputs = self.outputs
        if (outputs.wav or outputs.png or outputs.score or outputs.report) and not (
                model.tokenizer.kind != "char" and self.output_dir is not None):
            raise InputError("--wav, --png, --score and --report need a music model and --output-dir")
        if self.output is not None and self.output_dir is None and self.output.exists() and not self.force:
            raise InputError(f"{self.output} already exists; pass --force to overwrite or pick another --output")
        if model.tokenizer.reads_midi and self.output_dir is None:
            written = "its versions as .mid files" if self.piece is not None else ".mid files"
            raise InputError(f"a MIDI model writes {written}: give --output-dir DIR")
        primer = model.read_primer(self.primer_file) if self.primer_file is not None else self.primer
        if any(value is not None for value in header.values()):
            if primer is not None:
                raise InputError("--meter, --key and --unit-length make the primer; give them or a primer, not both")
            primer = controls.folk_primer(model.tokenizer, **header)
        controls.transpose_samples(model.tokenizer, [], self.transpose)  # a text model refuses before drawing
        if self.piece is not None:
            return PreparedSample(self, model, piece, infill.fill_config(model, span, self.options), span)
        config = model.sample_config(**self.options)
        model.sampling_rule(config)  # a rule asked of another kind of model refuses now
        if self.melody is None:
            model.encode_primer(primer)  # a bad primer fails before anything is drawn
        return PreparedSample(self, model, primer, config)


@dataclass
class PreparedSample:
    """A request that passed its checks: ready to draw, and to say what it was drawn with."""

    request: SampleRequest
    model: TrainedModel
    primer: Any
    """What the samples continue: the text or document given, a primer file's, or the tune header built; with a
    piece to fill, the piece as read (its text, or a MIDI piece's notes)."""
    config: SampleConfig
    """The settings the sampler runs with."""
    span: Span | None = None
    """With a piece to fill: where its span lies (`infill.piece_and_span`: in its text, its beats or its grid)."""

    def draw(self, on_step: Callable[[torch.Tensor], None] | None = None) -> list[Any]:
        """The samples (continuations of the primer, or settings of the melody), transposed as asked."""
        request, model = self.request, self.model
        if request.piece is not None:
            samples = model.infill(self.primer, request.span, request.candidates, on_step, voices=request.voices,
                                   unit=request.unit, **request.options)
        elif request.melody is not None:
            samples = model.harmonize(request.melody, on_step, candidates=request.candidates, **request.options)
        else:
            samples = model.sample(self.primer, on_step=on_step, **request.options)
        return controls.transpose_samples(model.tokenizer, samples, request.transpose)

    def settings(self) -> dict[str, Any]:
        """What the samples were drawn with, to keep beside them: the sampler's settings as run (the temperature
        applied, the model's own distribution where none was chosen), the rules as chosen, the tune controls
        given."""
        request = self.request
        settings = {k: v for k, v in to_dict(self.config).items() if k not in RULE_OPTIONS}
        settings.update({k: request.options.get(k) for k in RULE_OPTIONS},
                        temperature=self.config.effective_temperature)
        controls_given = {"meter": request.meter, "key": request.key, "unit_length": request.unit_length,
                          "transpose": request.transpose or None}
        return settings | {k: v for k, v in controls_given.items() if v is not None}


__all__ = ["PreparedSample", "SampleRequest"]
