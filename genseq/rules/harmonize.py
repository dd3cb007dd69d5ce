"""Harmonisation: a melody given as the top voice, the voices below drawn by a voices model under it.

BachBot's harmonisation task. The voices tokenizer writes every grid step as one frame, top voice first
(Soprano, Alto, Tenor, Bass), so once a melody is chosen, the token of every soprano slot and every bar
and meter token is known before anything is drawn: `melody_template` lays them out, and `GivenVoice`
forces them while the model fills the lower slots (under `VoiceLeading` too, unless told
`--free-voices`), then ends the piece after the melody's last frame. The LSTM reads left to right, so
each chord is chosen knowing the melody up to its own note, not the notes after it. To make up for
that a little, `TrainedModel.harmonize` draws several candidates per setting and keeps the one under
which the model finds the melody most likely (`melody_log_likelihood`): lower voices that fit the
melody's key make its next notes predictable (on Bach's held-out sopranos, 8 candidates raised the
judge's scale-consistency overlap from 0.71 to 0.85; docs/guide/harmonising.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genseq.errors import ConfigError, InputError
from genseq.lm.sampling import token_log_probs
from genseq.music.score import Score, score_from_pretty_midi, transpose
from genseq.music.theory import VOICE_RANGES
from genseq.rules import CANDIDATES
from genseq.tokenizers import Tokenizer

Template = list[int | None]
"""The token at every position of a harmonisation: given (an id) or left to the model (None)."""


def pitched_tracks(score: Score) -> list[Any]:
    """The tracks of `score` that hold notes and are not drums: one, for a melody."""
    return [track for track in score.tracks if track.notes and not track.is_drum]


def _voice_tokens(tokenizer: Tokenizer) -> list[int]:
    """The ids a voice's slot may hold: its note's start, its hold, or its rest."""
    return [*tokenizer.token_ids("PITCH"), *tokenizer.token_ids("HOLD"), *tokenizer.token_ids("REST")]


def read_melody(tokenizer: Tokenizer, source: Any) -> Score:
    """The notes of a melody (see `melody_template`); an ABC tune is rendered through music21, as ABC samples are."""
    from genseq.music.abc import abc_to_midi

    if isinstance(source, str) and "\n" in source:
        return score_from_pretty_midi(abc_to_midi(source), "the ABC melody")
    if isinstance(source, (str, Path)) and Path(source).suffix.lower() == ".abc":
        path = Path(source)
        if not path.is_file():
            raise InputError(f"{path}: no such melody file")
        try:
            midi = abc_to_midi(path.read_text(encoding="utf-8"))
        except InputError as err:
            raise InputError(f"{path}: {err}") from None
        except UnicodeDecodeError as err:
            raise InputError(f"{path} is not UTF-8 text (byte {err.start}); give a UTF-8 .abc file") from None
        return replace(score_from_pretty_midi(midi, str(path)), name=path.stem)
    return tokenizer.score(source)


def melody_template(tokenizer: Tokenizer, source: Any) -> tuple[Template, int]:
    """The voices token stream of a melody (ABC text, a .abc or .mid file, MIDI bytes, a PrettyMIDI or a
    Score of one pitched track) as the top voice, with None at every lower voice's slot: bars, meters and
    the melody's own tokens exactly as the tokenizer writes them; and the semitones it was moved by.

    For four voices the melody is moved by whole octaves to centre it in the soprano's range (a folk tune
    written an octave low would otherwise leave the voices below it no room in theirs)."""
    if tokenizer.kind != "voices":
        raise ConfigError(f"a melody is harmonised by a voices model (one voice per track); this model's "
                          f"tokenizer is {tokenizer.kind}")
    melody = read_melody(tokenizer, source)
    pitched = pitched_tracks(melody)
    if len(pitched) != 1:
        raise InputError(f"{melody.name or 'the melody'} has {len(pitched)} pitched tracks; a melody to harmonise "
                         "is one track (give a file of the tune alone)")
    shift = 0
    if tokenizer.voices == len(VOICE_RANGES):
        middle = sum(VOICE_RANGES[0]) / 2
        shift = 12 * round((middle - float(np.median([note.pitch for note in pitched[0].notes]))) / 12)
        pitched = transpose(replace(melody, tracks=(pitched[0],)), shift).tracks
    as_every_voice = replace(melody, tracks=tuple(replace(pitched[0], name=name) for name in tokenizer.names))
    voice_tokens = set(_voice_tokens(tokenizer))
    template: Template = []
    slot = 0
    for token in tokenizer.encode(as_every_voice):
        if token in voice_tokens:
            template.append(token if slot == 0 else None)
            slot = (slot + 1) % tokenizer.voices
        else:
            template.append(token)
    return template, shift


@torch.no_grad()
def melody_log_likelihood(network: torch.nn.Module, context: Sequence[int], template: Template,
                          rows: Sequence[Sequence[int]]) -> torch.Tensor:
    """The log-probability [rows] of the template's given tokens under each drawn row, read after `context`."""
    length = min(len(template), *(len(row) for row in rows))
    written = token_log_probs(network, context, [row[:length] for row in rows])
    given = torch.tensor([token is not None for token in template[:length]])
    return written[:, given].sum(1)


class GivenVoice:
    """Forces a template's given tokens and, after its end, the end of the piece; a slot left to the model may
    hold any voice token (no bar, meter or end in mid-frame). Every sample is at the same position."""

    def __init__(self, tokenizer: Tokenizer, template: Template):
        self.template, self.end = template, tokenizer.end_of_document
        self.not_voice = torch.ones(tokenizer.vocab_size, dtype=torch.bool)
        self.not_voice[_voice_tokens(tokenizer)] = False
        self.position = 0

    def start(self, context: Sequence[int], batch: int) -> None:
        self.position = 0

    def select(self, rows: torch.Tensor) -> None:
        """Nothing to keep per sample: every one is at the same position."""

    def advance(self, tokens: torch.Tensor) -> None:
        self.position += 1

    def mask(self, logits: torch.Tensor) -> None:
        given = self.template[self.position] if self.position < len(self.template) else self.end
        if given is None:
            logits.masked_fill_(self.not_voice, float("-inf"))
        else:  # the only token left, whatever another rule said of it
            logits.fill_(float("-inf"))
            logits[:, given] = 0.0


__all__ = ["CANDIDATES", "GivenVoice", "Template", "melody_log_likelihood", "melody_template", "pitched_tracks",
           "read_melody"]
