"""What a chorale fill may write: `VoiceLeading` inside the span, and the same rules against the notes already known
around the voice being drawn, so no fault is introduced at either join.

A fill of a voices model is a token template (`rules.harmonize.Template`): the voices kept as written are given,
the voices drawn again are left to the model. `VoiceLeading` checks each drawn note against the voices above it on
the same step and against the step before, which covers the left join (the step before the span is the piece's
own). Two things it cannot see are known here:

- a kept voice *below* the voice being drawn, on the same step: its note is given, so a pitch that would cross
  under it, or move in parallel fifths or octaves with it, is masked now;
- the step after the span, on the span's last step: every voice's note there is known, so a pitch that would move
  into it in parallel fifths or octaves with a voice already known on the last step is masked.

A note held across a join is cut there (`api.infill_voices`): a drawn voice strikes its own note on the span's first
step (no HOLD), and the piece's note after the span is struck again at the join. REST is never masked.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from genseq.rules.harmonize import Template
from genseq.rules.voice_leading import SILENT, VoiceLeading
from genseq.tokenizers import Tokenizer


class FillVoices(VoiceLeading):
    """`VoiceLeading` for a fill of `template` (see the module docstring); `after` is what each voice sounds on the
    step after the span (SILENT for a rest), None where the span ends the piece. Every sample is at the same
    position of the template, as `GivenVoice` keeps them."""

    def __init__(self, tokenizer: Tokenizer, template: Template, after: list[int] | None):
        super().__init__(tokenizer)
        self.template, self.after = template, after
        self.position = 0
        self.frame_of, self.slot_of = [], []
        voice_tokens = 0
        for token in template:
            is_voice = token is None or self.pitch <= token <= self.rest
            self.frame_of.append(voice_tokens // self.voices if is_voice else -1)
            self.slot_of.append(voice_tokens % self.voices if is_voice else -1)
            voice_tokens += is_voice
        self.last_frame = voice_tokens // self.voices - 1
        self.given_at = {(frame, slot): token for token, frame, slot in zip(template, self.frame_of, self.slot_of,
                                                                            strict=True) if frame >= 0}

    def start(self, context: Sequence[int], batch: int) -> None:
        super().start(context, batch)
        self.position = 0

    def advance(self, tokens: torch.Tensor) -> None:
        super().advance(tokens)
        self.position += 1

    def _given_pitch(self, frame: int, voice: int) -> torch.Tensor | None:
        """What a kept voice sounds on a step of the span [batch] (its held note read from the step before); None
        where the voice is drawn."""
        token = self.given_at[frame, voice]
        if token is None:
            return None
        if token == self.hold:
            return self.before[:, voice]
        return torch.full_like(self.before[:, voice], SILENT if token == self.rest else token - self.pitch)

    def mask(self, logits: torch.Tensor) -> None:
        """`VoiceLeading.mask`, then the known notes' rules for a drawn slot, in place."""
        super().mask(logits)
        if self.position >= len(self.template) or self.template[self.position] is not None:
            return
        frame, voice = self.frame_of[self.position], self.slot_of[self.position]
        pitches = self.pitches[None, :]
        before = self.before[:, voice]
        forbidden = torch.zeros(len(logits), len(self.pitches), dtype=torch.bool)
        hold_forbidden = torch.zeros(len(logits), dtype=torch.bool) if frame > 0 else torch.ones(len(logits),
                                                                                                   dtype=torch.bool)
        for lower in range(voice + 1, self.voices):
            now = self._given_pitch(frame, lower)
            if now is None:
                continue
            sounding = now != SILENT
            forbidden |= sounding[:, None] & (pitches < now[:, None])  # under a kept voice below: crossed
            hold_forbidden |= sounding & (before != SILENT) & (before < now)
            was = self.before[:, lower]
            moved = sounding & (was != SILENT) & (now != was) & (before != SILENT)
            interval = (before - was) % 12
            parallel = moved & torch.isin(interval, self.intervals)
            same_way = torch.sign(pitches - before[:, None]) == torch.sign(now - was)[:, None]
            forbidden |= parallel[:, None] & same_way & ((pitches - now[:, None]) % 12 == interval[:, None])
        if frame == self.last_frame and self.after is not None:
            for other in range(self.voices):
                known = self.now[:, other] if other < voice else None
                if other > voice:
                    known = self._given_pitch(frame, other)
                if other == voice or known is None:
                    continue
                into_pitch, hold_into = self._into_after(voice, other, known, pitches, before)
                forbidden |= into_pitch
                hold_forbidden |= hold_into
        logits[:, self.pitch:self.pitch + len(self.pitches)].masked_fill_(forbidden, float("-inf"))
        logits[:, self.hold].masked_fill_(hold_forbidden, float("-inf"))

    def _into_after(self, voice: int, other: int, known: torch.Tensor, pitches: torch.Tensor,
                    before: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Which pitches [batch, pitches], and whether holding [batch], would move `voice` in parallel fifths or
        octaves with `other` (sounding `known` on the span's last step) into the step after the span."""
        assert self.after is not None
        next_voice, next_other = self.after[voice], self.after[other]
        if next_voice == SILENT or next_other == SILENT:
            none = torch.zeros_like(known, dtype=torch.bool)
            return none[:, None].expand(-1, pitches.shape[1]), none
        target = (next_other - next_voice) % 12 if other < voice else (next_voice - next_other) % 12
        if target not in self.intervals.tolist():
            none = torch.zeros_like(known, dtype=torch.bool)
            return none[:, None].expand(-1, pitches.shape[1]), none
        motion = torch.sign(next_other - known)
        moves = (known != SILENT) & (motion != 0)

        def parallel(candidate: torch.Tensor) -> torch.Tensor:
            interval = (known[:, None] - candidate) % 12 if other < voice else (candidate - known[:, None]) % 12
            return moves[:, None] & (interval == target) & (torch.sign(next_voice - candidate) == motion[:, None])

        return parallel(pitches), parallel(before[:, None])[:, 0] & (before != SILENT)


__all__ = ["FillVoices"]
