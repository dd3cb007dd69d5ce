"""What a fill of a MIDI piece may write while it is drawn (`api.infill_midi`): events up to the span's end in time,
in the piece's own instruments, on the beat grid in its meter and tempo.

A fill starts where its span does (`api.infill_midi` leads the context there) and follows time as the encoding
does: `EventClock` counts the time shifts of the performance encoding, `GridClock` the bars and positions of the
beat grid. A token that would take time to the span's end or past it is where the fill ends: the end of the fill
takes its place with their joint probability and they are masked, so the model decides when its span is done, as
the bar line that would close its last bar ends an ABC fill (`rules.infill.FillBars`). On the grid a fill also keeps
the meter (no METER token: a span across a change of meter is refused before anything is drawn) and the tempo (no
TEMPO token: the piece's tempo map holds), writes positions forward inside the bar, and a DUR after every PITCH.
Only the piece's own instruments play.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import torch

from genseq.errors import ConfigError
from genseq.tokenizers.beat import BeatTokenizer
from genseq.tokenizers.midi import Instrument, MidiEncoding, MidiTokenizer

FIXED_ON_THE_GRID = ("METER", "TEMPO", "TEMPO_FRACTION")
"""Beat-grid tokens a fill never writes: the piece's meter and tempo map hold inside the span (a grid without tempo
tokens has only the first)."""


class EventClock:
    """Time in a stream of performance events: a state is the step reached; TIME_SHIFT tokens move it, the end of a
    document starts it again."""

    def __init__(self, tokenizer: MidiTokenizer):
        self.tokenizer, self.end = tokenizer, tokenizer.end_of_document
        self.shifts = tokenizer.token_ids("TIME_SHIFT")
        self.offsets = torch.zeros(tokenizer.vocab_size, dtype=torch.long)
        self.offsets[self.shifts.start:self.shifts.stop] = torch.arange(1, len(self.shifts) + 1)
        self.start: int = 0

    def after(self, state: int, token: int) -> int:
        """The state after `token`."""
        if token == self.end:
            return self.start
        return state + token - self.shifts.start + 1 if token in self.shifts else state

    def time(self, state: int) -> int:
        return state

    def moves_to(self, states: list[int]) -> torch.Tensor:
        """The time [batch, vocab] each state would be at after each token."""
        return torch.tensor(states)[:, None] + self.offsets[None]

    def impossible(self, states: list[int]) -> torch.Tensor | None:
        """Tokens [batch, vocab] that would move time backwards: none in a stream of shifts."""
        return None

    def lead_to(self, state: int, step: int, bars: list[tuple[int, int]]) -> list[int]:
        """The tokens that take a stream from `state` to `step`: time shifts."""
        return self.tokenizer.time_shifts(step - state)


GridState = tuple[int, int, int, int]
"""(first step of the bar, its length, the meter the next bar takes, the position in the bar)."""


class GridClock:
    """Where a stream on the beat grid is: BAR, METER and POS move it as `BeatTokenizer.decode` reads them."""

    def __init__(self, tokenizer: BeatTokenizer):
        self.bar, self.end = tokenizer.token_ids("BAR").start, tokenizer.end_of_document
        self.meters, self.positions = tokenizer.token_ids("METER"), tokenizer.token_ids("POS")
        self.vocab_size = tokenizer.vocab_size
        self.start: GridState = (0, 0, tokenizer.default_bar_steps, 0)

    def after(self, state: GridState, token: int) -> GridState:
        """The state after `token`."""
        bar_start, bar_length, meter, position = state
        if token == self.bar:
            return bar_start + bar_length, meter, meter, 0
        if token in self.positions:
            return bar_start, bar_length, meter, token - self.positions.start
        if token in self.meters:
            return bar_start, bar_length, token - self.meters.start + 1, position
        return self.start if token == self.end else state

    def time(self, state: GridState) -> int:
        return state[0] + state[3]

    def moves_to(self, states: list[GridState]) -> torch.Tensor:
        """The time [batch, vocab] each state would be at after each token: a POS moves inside the bar, a BAR to
        the bar's end."""
        bar_start, bar_length, _, position = torch.tensor(states).T
        moves = (bar_start + position)[:, None].expand(-1, self.vocab_size).clone()
        moves[:, self.positions.start:self.positions.stop] = bar_start[:, None] + torch.arange(len(self.positions))
        moves[:, self.bar] = bar_start + bar_length
        return moves

    def impossible(self, states: list[GridState]) -> torch.Tensor:
        """Positions [batch, vocab] behind the one reached, or past the bar's end."""
        _, bar_length, _, position = torch.tensor(states).T
        out = torch.zeros(len(states), self.vocab_size, dtype=torch.bool)
        at = torch.arange(len(self.positions))[None]
        out[:, self.positions.start:self.positions.stop] = (at < position[:, None]) | (
            (bar_length[:, None] > 0) & (at >= bar_length[:, None]))
        return out

    def lead_to(self, state: GridState, step: int, bars: list[tuple[int, int]]) -> list[int]:
        """The tokens that take a stream from `state` to `step`: a BAR for each bar that starts on the way (a METER
        before one whose length changes, as `bars`, the piece's (first step, length), give them), then the position."""
        tokens: list[int] = []
        bar_start, bar_length, meter, _ = state
        for start, length in bars:
            if start == bar_start + bar_length and start <= step:
                if length != meter:
                    tokens.append(self.meters.start + length - 1)
                    meter = length
                tokens.append(self.bar)
                bar_start, bar_length = start, length
        if step > bar_start:
            tokens.append(self.positions.start + step - bar_start)
        return tokens


def clock_for(tokenizer: MidiEncoding) -> EventClock | GridClock:
    """The clock of a MIDI model's encoding (performance events or the beat grid)."""
    if isinstance(tokenizer, BeatTokenizer):
        return GridClock(tokenizer)
    if isinstance(tokenizer, MidiTokenizer):
        return EventClock(tokenizer)
    raise ConfigError(f"a {tokenizer.kind} model has no clock for MIDI fills; it fills beats of chorales")


def times(clock: EventClock | GridClock, ids: Sequence[int]) -> list[int]:
    """The time each token of a stream takes it to (the step it stands at, for tokens that do not move it)."""
    state, out = clock.start, []
    for token in ids:
        state = clock.after(state, token)  # type: ignore[arg-type]
        out.append(clock.time(state))  # type: ignore[arg-type]
    return out


class FillTime:
    """Events up to step `until`, then the end of the fill (see the module docstring); only `instruments` play."""

    def __init__(self, tokenizer: MidiEncoding, until: int, instruments: Collection[Instrument]):
        self.until, self.end = until, tokenizer.end_of_document
        self.clock = clock_for(tokenizer)
        programs, drums = tokenizer.token_ids("PROGRAM"), tokenizer.token_ids("DRUMS").start
        playing = {drums if is_drum else programs.start + program for program, is_drum in instruments}
        self.never = sorted({*programs, drums} - playing)
        grid = isinstance(tokenizer, BeatTokenizer)
        if grid:
            fixed = FIXED_ON_THE_GRID if tokenizer.tempo else FIXED_ON_THE_GRID[:1]
            self.never += [token for name in fixed for token in tokenizer.token_ids(name)]
        self.pitches = tokenizer.token_ids("PITCH") if grid else range(0)
        self.durations = torch.zeros(tokenizer.vocab_size, dtype=torch.bool)
        if grid:
            self.durations[tokenizer.token_ids("DUR").start:tokenizer.token_ids("DUR").stop] = True
        self.states: list = []
        self.last: list[int] = []
        self.ended = torch.zeros(0, dtype=torch.bool)

    def start(self, context: Sequence[int], batch: int) -> None:
        state = self.clock.start
        for token in context:
            state = self.clock.after(state, token)  # type: ignore[arg-type]
        self.states, self.last = [state] * batch, [context[-1] if context else -1] * batch
        self.ended = torch.zeros(batch, dtype=torch.bool)

    def select(self, rows: torch.Tensor) -> None:
        kept = rows.tolist()
        self.states, self.last = [self.states[r] for r in kept], [self.last[r] for r in kept]
        self.ended = self.ended[rows]

    def advance(self, tokens: torch.Tensor) -> None:
        self.last = tokens.tolist()
        self.states = [self.clock.after(state, token) for state, token in zip(self.states, self.last, strict=True)]
        self.ended |= tokens == self.end

    def mask(self, logits: torch.Tensor) -> None:
        """Time past the span becomes the end of the fill; the instruments, meter and tempo are the piece's."""
        late = self.clock.moves_to(self.states) >= self.until
        impossible = self.clock.impossible(self.states)
        if impossible is not None:
            late &= ~impossible
            logits.masked_fill_(impossible, float("-inf"))
        end = torch.logsumexp(logits.masked_fill(~late, float("-inf")), 1)
        logits.masked_fill_(late, float("-inf"))
        logits[:, self.never] = float("-inf")
        if self.pitches:
            after_pitch = torch.tensor([token in self.pitches for token in self.last])
            logits.masked_fill_(after_pitch[:, None] & ~self.durations[None], float("-inf"))
            end = end.masked_fill(after_pitch, float("-inf"))
        logits[:, self.end] = end


__all__ = ["EventClock", "FIXED_ON_THE_GRID", "FillTime", "GridClock", "GridState", "clock_for", "times"]
