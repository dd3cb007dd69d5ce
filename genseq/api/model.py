"""A trained model loaded for use: sampling (with its rules), harmonising, evaluating, describing, exporting."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Unpack

import numpy as np
import torch

from genseq.api import infill
from genseq.console import say
from genseq.corpora.sources import find_documents
from genseq.errors import CheckpointError, ConfigError, InputError
from genseq.lm.checkpoint import load_checkpoint, resolve_checkpoint, save_checkpoint
from genseq.lm.config import ModelConfig, SampleConfig, SampleOptions, check_names, from_dict, to_dict
from genseq.lm.data import evaluation_windows
from genseq.lm.model import LSTMLanguageModel
from genseq.lm.sampling import Rules, TokenRule, generate
from genseq.music.score import MIDI_SUFFIXES
from genseq.rules.full_bars import FullBars
from genseq.rules.harmonize import CANDIDATES, GivenVoice, melody_log_likelihood, melody_template
from genseq.rules.valid_header import ValidHeader
from genseq.rules.voice_leading import VoiceLeading
from genseq.tokenizers import tokenizer_from_dict

DISTRIBUTION_OPTIONS = {"temperature", "top_k", "top_p"}
"""Sampling options that shape the next-token distribution; a checkpoint's defaults for them go as one."""
RULES_BY_KIND = {"abc": {"full_bars": True}, "voices": {"voice_leading": True}}
"""The sampling rules every model of a kind samples under unless told otherwise (`--free-bars`, `--free-voices`):
the judge found them better for both shipped models (docs/guide/judging.md)."""

@dataclass
class EvalResult:
    loss: float
    """Mean cross-entropy in nats per token."""
    tokens: int
    unknown_tokens: int

    @property
    def bits(self) -> float:
        return self.loss / math.log(2)


class TrainedModel:
    """A model rebuilt from one checkpoint file, with its tokenizer: ready to sample and evaluate."""

    def __init__(self, payload: dict[str, Any], path: Path):
        self.path = path
        self.payload = payload
        if "tokenizer" not in payload:
            raise CheckpointError(f"{path} holds no tokenizer (its Trainer was given none): it can resume training "
                                  "but not be sampled or evaluated; train with `genseq train` or genseq.train")
        try:
            self.tokenizer = tokenizer_from_dict(payload["tokenizer"])
            self.config = from_dict(ModelConfig, payload["model_config"])
            self.network = LSTMLanguageModel(self.config)
            self.network.load_state_dict(payload["model"])
        except ConfigError as err:  # a shape too large to hold names its memory; other settings name the file
            raise CheckpointError(f"{path}: its model cannot be built here: {err}") from None
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as err:
            reason = " ".join(str(err).split())[:160]
            raise CheckpointError(f"{path} is a damaged genseq checkpoint: its tokenizer, model settings or weights "
                                  f"do not fit together ({type(err).__name__}: {reason}); give a file written by "
                                  "`genseq train`") from None
        self.network.eval()

    def __repr__(self) -> str:
        shape = f"{self.config.num_layers}x{self.config.hidden_size}"
        return (f"TrainedModel(kind={self.tokenizer.kind!r}, shape={shape!r}, vocab_size={self.tokenizer.vocab_size}, "
                f"path={str(self.path)!r})")

    def encode_primer(self, primer: Any, name: str = "primer") -> list[int]:
        """Token ids of a primer (or of another document the model reads, called `name` in errors); symbols the
        model never saw are an error that names them."""
        if primer is None or primer == "":
            return []
        unknown = self.tokenizer.unknown_symbols(primer)
        if unknown:
            shown = ", ".join(repr(s) for s in unknown[:10])
            raise InputError(f"the {name} holds {len(unknown)} symbol(s) this model never saw: {shown}; remove them")
        return self.tokenizer.encode(primer)

    @property
    def sample_defaults(self) -> dict[str, Any]:
        """Sampling settings the checkpoint recommends (such as a temperature the judge found better), if any."""
        return dict(self.payload.get("sample_defaults") or {})

    def sample_config(self, **options: Unpack[SampleOptions]) -> SampleConfig:
        """The settings a sample is drawn with: `options` (SampleConfig fields; None means not chosen), then the
        checkpoint's `sample_defaults`, then the rules of its kind (`RULES_BY_KIND`), then SampleConfig's
        defaults. Options that set any of temperature, top_k and top_p replace the defaults of all three: a call
        draws from exactly the distribution it names. Beam search (beam_size > 1) ranks by the model's own
        distribution, so it takes none of those defaults (the rules stay). An unknown option is a ConfigError."""
        check_names(options, SampleConfig, "sampling option")
        given = {k: v for k, v in options.items() if v is not None}
        defaults = {**RULES_BY_KIND.get(self.tokenizer.kind, {}), **self.sample_defaults}
        if given.keys() & DISTRIBUTION_OPTIONS or {**defaults, **given}.get("beam_size", SampleConfig.beam_size) > 1:
            defaults = {k: v for k, v in defaults.items() if k not in DISTRIBUTION_OPTIONS}
        return SampleConfig(**{**defaults, **given})

    def sample_ids(self, primer: Any = None, on_step: Callable[[torch.Tensor], None] | None = None,
                   **options: Unpack[SampleOptions]) -> list[list[int]]:
        """Token ids of new samples (without the primer); options are SampleConfig fields (see `sample_config`)."""
        config = self.sample_config(**options)
        return generate(self.network, self.encode_primer(primer), config, self.tokenizer.end_of_document, on_step,
                        prelude=self.payload.get("prelude", ()), rule=self.sampling_rule(config))

    def sampling_rule(self, config: SampleConfig) -> TokenRule | None:
        """The rule `config` asks for (`voice_leading`, `full_bars`); a ConfigError where it is for another kind
        of model (each rule refuses the others' kinds, so at most one is built). Every tune of an ABC model gets
        a valid header (`ValidHeader`) as well."""
        rule = None
        if config.voice_leading:
            rule = VoiceLeading(self.tokenizer)
        if config.full_bars:
            rule = FullBars(self.tokenizer)
        if self.tokenizer.kind == "abc":
            return Rules(ValidHeader(self.tokenizer), rule)
        return rule

    def sample(self, primer: Any = None, include_primer: bool = True,
               on_step: Callable[[torch.Tensor], None] | None = None, **options: Unpack[SampleOptions]) -> list[Any]:
        """Decoded samples (text, or PrettyMIDI for MIDI models), each continuing `primer` (and starting
        with it unless `include_primer` is False), finished as its encoding says (`Tokenizer.finish_sample`: an
        ABC tune's `L:`). Options are SampleConfig fields."""
        start = self.encode_primer(primer) if include_primer else []
        return [self.tokenizer.finish_sample(self.tokenizer.decode(start + ids))
                for ids in self.sample_ids(primer, on_step, **options)]

    def harmonize(self, melody: Any, on_step: Callable[[torch.Tensor], None] | None = None,
                  candidates: int = CANDIDATES, **options: Unpack[SampleOptions]) -> list[Any]:
        """Settings of `melody` (ABC text, a .abc or .mid file of one track, MIDI bytes, PrettyMIDI) by a voices
        model: the melody is every sample's top voice, as long as it is, and the model writes the voices below
        (under voice leading unless `voice_leading=False`). A melody far from the soprano's range is moved by
        octaves into it, and said so. Each setting is the best of `candidates` drawn, by the likelihood of the
        melody under it (`harmonize.melody_log_likelihood`; beam search ranks by its own). `on_step` sees the
        first candidates' tokens. Options are SampleConfig fields (the melody sets the length)."""
        if candidates < 1:
            raise ConfigError(f"--candidates must be positive, got {candidates}")
        template, shift = melody_template(self.tokenizer, melody)
        if shift:
            octaves = abs(shift) // 12
            say(f"the melody is moved {octaves} octave{'s' if octaves > 1 else ''} {'up' if shift > 0 else 'down'} "
                "into the top voice's range")
        config = self.sample_config(**{**options, "length": len(template) + 1, "stop_at_end": True})
        kept = config.num_samples
        if config.beam_size == 1:
            config = dataclasses.replace(config, num_samples=kept * candidates)
        rule = Rules(self.sampling_rule(config), GivenVoice(self.tokenizer, template))
        context = list(self.payload.get("prelude") or [self.tokenizer.end_of_document])
        shown = None if on_step is None else lambda tokens: on_step(tokens[:kept])
        rows = generate(self.network, [], config, self.tokenizer.end_of_document, shown, prelude=context, rule=rule)
        if len(rows) > kept:
            scores = melody_log_likelihood(self.network, context, template, rows)
            rows = [rows[i] for i in scores.argsort(descending=True)[:kept].tolist()]
        return [self.tokenizer.decode(row) for row in rows]

    def infill(self, piece: Any, span: str | tuple[Any, Any] | None = None, candidates: int = CANDIDATES,
               on_step: Callable[[torch.Tensor], None] | None = None, *, voices: str | Sequence[str] | None = None,
               unit: str | None = None, **options: Unpack[SampleOptions]) -> list[Any]:
        """The piece with `span` drawn again, `num_samples` times, best first; the rest stays character for
        character (note for note). `piece`: a tune's or text's text, or a Path to read; for a MIDI model a MIDI
        file (a Path), its bytes or a PrettyMIDI, and the versions are PrettyMIDI. `span`: bars of an ABC model's
        tune (`"5-8"` or `(5, 8)`, a pickup being bar 0), filled with exactly that many full bars; beats of a
        chorale (`"9-16"`, from 1 at the start of the piece), in the `voices` named (`"alto,tenor"`; the others
        kept as written; default all), under voice leading at both joins (`api.infill_voices`); bars of a MIDI
        model's piece (`"5-8"`, from 1 at the start of the file by its time signatures) or, with `unit="seconds"`,
        seconds (`"12-20"`), in the piece's instruments, meter and tempo (`api.infill_midi`); characters of a text
        model's text (`"120-180"`, from 1, both included), or None for the one `[...]` marker in it (a fill of
        `length` characters, default `spans.MARKER_LENGTH`). Each fill is the best of `candidates` drawn from
        what comes before, by how likely the model then finds all that follows it (`genseq.api.infill`). Options
        are SampleConfig fields (no beam search). A span outside the piece, empty or all of it is an InputError."""
        return infill.infill(self, piece, span, candidates, on_step, voices, unit, **options)

    def read_primer(self, path: str | Path) -> Any:
        """A primer document from a file, checked against the kind of model (MIDI or text)."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no such primer file")
        is_midi = path.suffix.lower() in MIDI_SUFFIXES
        if is_midi != self.tokenizer.reads_midi:
            wanted = "a .mid file" if self.tokenizer.reads_midi else "a text or .abc file"
            raise InputError(f"{path} cannot prime this {self.tokenizer.kind} model; give {wanted}")
        try:
            return self.tokenizer.read_primer(str(path))
        except UnicodeDecodeError as err:
            raise InputError(f"{path} is not UTF-8 text (byte {err.start}); give a UTF-8 primer file") from None

    @torch.no_grad()
    def evaluate(self, source: str, encoding: str = "utf-8", seq_len: int = 256, batch_size: int = 32) -> EvalResult:
        """Cross-entropy of the model on held-out files, documents separated as in training."""
        documents = find_documents(source, self.tokenizer.kind, encoding)
        pieces = [np.array([self.tokenizer.end_of_document], dtype=np.int32)]
        for doc in documents:
            pieces.extend(self.tokenizer.encode_array(piece) for piece in doc.pieces())
            pieces.append(np.array([self.tokenizer.end_of_document], dtype=np.int32))
        tokens = np.concatenate(pieces)
        total, count, state = 0.0, 0, None
        for window in evaluation_windows(tokens, batch_size, seq_len, len(tokens)):
            logits, state = self.network(window[:, :-1], state)
            targets = window[:, 1:]
            total += torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum").item()
            count += targets.numel()
        return EvalResult(total / count, count, int((tokens == self.tokenizer.unknown).sum()))

    def info(self) -> dict[str, Any]:
        p = self.payload
        return {
            "checkpoint": str(self.path),
            "model": to_dict(self.config),
            "parameters": self.network.num_parameters(),
            "tokenizer": self.tokenizer.kind,
            "vocab_size": self.tokenizer.vocab_size,
            "data": p.get("data"),
            "parent": p.get("parent") if isinstance(p.get("parent"), dict) else None,
            "progress": p.get("progress"),
            "train_config": p.get("train_config"),
            "versions": p.get("versions"),
            "created": p.get("created"),
            "sample_defaults": self.sample_defaults,
        }


def export_checkpoint(source: str | Path, destination: str | Path, float16: bool = False) -> Path:
    """A copy of a checkpoint for sampling only: the optimizer and the training state are left out.

    With `float16` the weights are stored in half precision, half the file (loading widens them to float32
    again); a weight beyond float16's range is an error rather than an infinity.
    """
    payload = load_checkpoint(resolve_checkpoint(source))
    training_only = ("optimizer", "scaler", "hidden", "rank_rng", "rng", "format", "version")
    kept = {k: v for k, v in payload.items() if k not in training_only}
    if float16:
        kept["model"] = {name: t.half() if t.is_floating_point() else t for name, t in kept["model"].items()}
        overflowed = [name for name, t in kept["model"].items() if t.is_floating_point() and not t.isfinite().all()]
        if overflowed:
            raise CheckpointError(f"{source}: weights {', '.join(overflowed)} do not fit float16; export without it")
    save_checkpoint(Path(destination), kept)
    return Path(destination)


def load(path: str | Path) -> TrainedModel:
    """A trained model from a checkpoint file or a run folder (its best.pt)."""
    path = resolve_checkpoint(path)
    return TrainedModel(load_checkpoint(path), path)
