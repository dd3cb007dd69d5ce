"""Part-writing rules kept while a voices model samples: the faults the chorale judge counts are masked out.

A model trained on Bach's chorales learns chords in a key, not the rule between two voices: left to
itself it writes parallel fifths and octaves at ten times Bach's rate (docs/guide/judging.md).
`VoiceLeading` sits between the model's logits and the draw and removes, for the voice about to be
written, every pitch that would

- move in parallel fifths or octaves (unisons included) with a voice above it that moves on this step,
  as `judge.chorale` counts them: both voices move the same way, from such an interval to the same
  interval class;
- cross above the nearest sounding voice above it (by a new note, or by holding one that a voice above has
  moved below);
- leave the voice's usual range (`music.theory.VOICE_RANGES`, four voices only);

and, inside a frame, the bar, meter and end tokens (which belong between frames). REST is never masked,
so some token is always left to draw. The model's probabilities over what remains are
renormalised by the sampler, so temperature, top-k and top-p act on the allowed tokens only.
The voices are written top down within a frame (`tokenizers.voices`), so each pair is checked when
its lower voice is drawn, against the upper voice's note already drawn on this step.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from genseq.errors import ConfigError
from genseq.music.theory import PARALLEL_INTERVALS, VOICE_RANGES
from genseq.tokenizers import Tokenizer

SILENT = -1
"""The pitch of a voice that sounds no note."""


class VoiceLeading:
    """The rules above for a batch of samples of a voices model: `start`, then `mask` and `advance` each step."""

    def __init__(self, tokenizer: Tokenizer):
        if tokenizer.kind != "voices":
            raise ConfigError(f"--voice-leading keeps four-part writing rules for voices models; this is a "
                              f"{tokenizer.kind} model (sample it without --voice-leading)")
        self.voices = tokenizer.voices
        self.end = tokenizer.end_of_document
        pitch, hold, rest = (tokenizer.token_ids(name) for name in ("PITCH", "HOLD", "REST"))
        self.pitch, self.hold, self.rest = pitch.start, hold.start, rest.start
        self.between_frames = torch.zeros(tokenizer.vocab_size, dtype=torch.bool)
        self.between_frames[[*tokenizer.token_ids("BAR"), *tokenizer.token_ids("METER"), self.end]] = True
        self.pitches = torch.arange(len(pitch))
        ranges = VOICE_RANGES if self.voices == len(VOICE_RANGES) else ((0, len(pitch) - 1),) * self.voices
        self.low, self.high = (torch.tensor(bound) for bound in zip(*ranges, strict=True))
        self.intervals = torch.tensor(PARALLEL_INTERVALS)
        self.start([], 1)

    def start(self, context: Sequence[int], batch: int) -> None:
        """Read what the model read before sampling (the prelude and primer), for `batch` samples alike."""
        self.slot = torch.zeros(1, dtype=torch.long)  # the voice the next token writes
        self.before = torch.full((1, self.voices), SILENT)  # each voice's pitch on the last complete step
        self.now = torch.full((1, self.voices), SILENT)  # on this step, for the voices written so far
        for token in context:
            self.advance(torch.tensor([token]))
        self.select(torch.zeros(batch, dtype=torch.long))

    def select(self, rows: torch.Tensor) -> None:
        """Keep the samples at `rows` (a beam search's survivors, or one row repeated)."""
        self.slot, self.before, self.now = self.slot[rows], self.before[rows], self.now[rows]

    def advance(self, tokens: torch.Tensor) -> None:
        """Take each sample's new token [batch]."""
        rows, slot = torch.arange(len(tokens)), self.slot
        held = self.before[rows, slot]
        pitch = torch.where(tokens == self.hold, held, torch.where(tokens == self.rest, SILENT, tokens - self.pitch))
        is_voice = (tokens == self.hold) | (tokens == self.rest) | ((tokens >= self.pitch) & (tokens < self.hold))
        self.now[rows[is_voice], slot[is_voice]] = pitch[is_voice]
        self.slot = self.slot + is_voice
        frame_done = self.slot == self.voices
        self.before[frame_done] = self.now[frame_done]
        ended = tokens == self.end
        self.before[ended] = SILENT
        self.slot[frame_done | ended] = 0

    def mask(self, logits: torch.Tensor) -> None:
        """Set the logits [batch, vocab] of the tokens the rules forbid to -inf, in place."""
        rows = torch.arange(len(logits))
        logits.masked_fill_((self.slot > 0)[:, None] & self.between_frames, float("-inf"))
        below = self.before[rows, self.slot][:, None]  # the voice being written, on the last step
        pitches = self.pitches[None, :]
        forbidden = (pitches < self.low[self.slot][:, None]) | (pitches > self.high[self.slot][:, None])
        written = torch.arange(self.voices)[None, :] < self.slot[:, None]
        sounding = written & (self.now != SILENT)
        nearest_above = torch.where(sounding, self.now, len(self.pitches)).min(1).values[:, None]
        forbidden |= pitches > nearest_above
        logits[:, self.hold].masked_fill_(below[:, 0] > nearest_above[:, 0], float("-inf"))  # held, it would cross
        moved = sounding & (self.before != SILENT) & (self.now != self.before) & (below != SILENT)
        for upper in range(self.voices - 1):
            interval = (self.before[:, upper, None] - below) % 12
            parallel = moved[:, upper, None] & torch.isin(interval, self.intervals)
            same_way = torch.sign(pitches - below) == torch.sign(self.now[:, upper] - self.before[:, upper])[:, None]
            forbidden |= parallel & same_way & ((self.now[:, upper, None] - pitches) % 12 == interval)
        logits[:, self.pitch:self.pitch + len(self.pitches)].masked_fill_(forbidden, float("-inf"))
