"""ABC notation as characters: one tune per document, decoded back to its exact text.

A tune renders to MIDI through music21. Tunes a model writes are often incomplete, so rendering
first completes the header the way ABC 2.1 defines its defaults (`complete_abc`); the text the
tokenizer decodes is never changed, and a sampled tune only gains the `L:` its header implies
(`AbcTokenizer.finish_sample`).
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import io
import re
import sys
import threading
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from genseq.abc_header import meters_in, units_in, with_unit_length
from genseq.errors import InputError
from genseq.tokenizers.text import CharTokenizer

if TYPE_CHECKING:
    import pretty_midi
    from music21.stream import Score

MAX_TUNE_CHARS = 20_000
"""Longer tunes are refused: music21's parse time grows with length (real tunes stay under 3,000)."""
MAX_RENDER_SECONDS = 10.0
"""Parsing and rendering one tune is cut off after this long. Short hostile tunes make music21 run
for minutes or for ever (a meter of `M:99999/1`, hundreds of numbered repeat endings), so length
alone is no bound; real tunes take well under a second."""

MAX_METER = 64
"""Beats (and beat units) a meter may have: real tunes stay under 16; music21 spends seconds and hundreds of MB
laying out one bar of `M:99999/1`, so such a tune is refused before it is parsed."""
_METER_FIELD = re.compile(r"^M:\s*(\d+)\s*/\s*(\d+)|\[M:\s*(\d+)\s*/\s*(\d+)", re.MULTILINE)
_TUNE_START = re.compile(r"^X:", re.MULTILINE)
_DEFAULT_LENGTH = re.compile(r"^[LM]:", re.MULTILINE)
_HEADER_FIELD = re.compile(r"^[A-Za-z]:", re.MULTILINE)


def complete_abc(text: str) -> str:
    """`text` with the header fields a renderer needs and ABC 2.1 implies.

    Every training tune starts with its header, so text before a sample's first `X:` line (or, without
    one, before its first header field) is not part of the tune, as when a corpus file is read; a
    sample without `X:` gets `X:1` in front; a tune with neither `L:` nor `M:` gets `L:1/8`, the
    standard's default note length, which music21 needs. A missing `K:` is left alone (read in C).
    """
    start = _TUNE_START.search(text)
    if start:
        text = text[start.start():]
    else:
        field = _HEADER_FIELD.search(text)
        text = "X:1\n" + (text[field.start():] if field else text)
    if not _DEFAULT_LENGTH.search(text):
        first_line_end = text.find("\n") + 1 or len(text)
        text = text[:first_line_end] + "L:1/8\n" + text[first_line_end:]
    return text


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """music21 prints parse warnings to stdout/stderr and emits Python warnings; hide them all."""
    sink = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        warnings.simplefilter("ignore")
        yield


def one_line(message: object) -> str:
    """A message (or an exception's) on one short line, for errors that wrap third-party ones."""
    return " ".join(str(message).split())[:160] or type(message).__name__


class _OutOfTime(BaseException):
    """Raised inside a render that ran past MAX_RENDER_SECONDS; a BaseException so that music21's
    own `except Exception` clauses cannot swallow it."""


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise InputError in this thread once `seconds` have passed (checked between Python bytecodes,
    which is where music21 spends its time). Works in any thread, unlike SIGALRM. The interrupt is
    repeated every 0.2 s: one can land where Python swallows it (a bare `except:`, a garbage-collector
    callback, a `__del__`)."""
    thread, lock, done, fired = ctypes.c_ulong(threading.get_ident()), threading.Lock(), threading.Event(), [False]

    def watchdog() -> None:
        if done.wait(seconds):
            return
        while True:
            with lock:
                if done.is_set():
                    return
                fired[0] = ctypes.pythonapi.PyThreadState_SetAsyncExc(thread, ctypes.py_object(_OutOfTime)) == 1
            if done.wait(0.2):
                return

    def swallowed_quietly(unraisable: Any) -> None:
        # an interrupt that landed in a gc callback or `__del__` was swallowed there; the next one follows, so
        # Python's "Exception ignored in ..." report of it would only be noise on the user's terminal
        if not isinstance(unraisable.exc_value, _OutOfTime):
            previous_hook(unraisable)

    previous_hook, sys.unraisablehook = sys.unraisablehook, swallowed_quietly
    threading.Thread(target=watchdog, daemon=True, name="abc-time-limit").start()
    try:
        yield
    except _OutOfTime:
        raise InputError(f"music21 took longer than {seconds:g} s on this ABC tune; not rendered") from None
    finally:
        with lock:
            done.set()
            if fired[0]:  # raised but perhaps not yet delivered: withdraw it so it cannot surface later
                ctypes.pythonapi.PyThreadState_SetAsyncExc(thread, None)
        sys.unraisablehook = previous_hook


def parse_abc(text: str) -> Score:
    """The first tune of `text` that has notes, as a music21 score; InputError when music21 cannot read
    it or takes longer than MAX_RENDER_SECONDS."""
    with _time_limit(MAX_RENDER_SECONDS):
        return _parse_abc(text)


def _parse_abc(text: str) -> Score:
    from music21 import converter, stream  # music21 takes seconds to import; only rendering needs it

    if len(text) > MAX_TUNE_CHARS:
        raise InputError(f"ABC tune of {len(text):,} characters is longer than {MAX_TUNE_CHARS:,}; not rendered")
    for match in _METER_FIELD.finditer(text):
        beats, unit = (n.lstrip("0") for n in filter(None, match.groups()))
        if not all(n and len(n) <= 9 and int(n) <= MAX_METER for n in (beats, unit)):
            raise InputError(f"the meter {beats[:9] or 0}/{unit[:9] or 0} of this ABC tune is beyond "
                             f"{MAX_METER}/{MAX_METER}; not rendered")
    try:
        with _quiet():
            parsed = converter.parseData(complete_abc(text), format="abc")
    except Exception as err:  # music21 raises many unrelated types on malformed ABC
        raise InputError(f"music21 cannot parse this ABC tune: {one_line(err)}") from None
    scores = parsed.scores if isinstance(parsed, stream.Opus) else [parsed]
    score = next((s for s in scores if isinstance(s, stream.Score) and s.flatten().notes), None)
    if score is None:
        raise InputError("this ABC tune holds no notes; nothing to render")
    _unshare_time_signatures(score)
    return score


def _unshare_time_signatures(score: Score) -> None:
    """music21's ABC reader puts one TimeSignature object in two measures when a tune returns to
    its meter after an irregular bar; its MIDI writer then fails, so give each measure its own."""
    seen: set[int] = set()
    for measure in score.recurse().getElementsByClass("Measure"):
        for signature in list(measure.getElementsByClass("TimeSignature")):
            if id(signature) in seen:
                measure.replace(signature, copy.deepcopy(signature))
            seen.add(id(signature))


def abc_to_midi(text: str) -> pretty_midi.PrettyMIDI:
    """MIDI of one ABC tune, repeats played out where music21 can expand them; InputError when
    music21 cannot render it or parsing and rendering take longer than MAX_RENDER_SECONDS."""
    with _time_limit(MAX_RENDER_SECONDS):
        return _abc_to_midi(text)


def _abc_to_midi(text: str) -> pretty_midi.PrettyMIDI:
    import pretty_midi
    from music21 import midi

    score = _parse_abc(text)
    try:
        with _quiet():
            score = score.expandRepeats()
    except Exception:  # unbalanced repeat signs: play the tune through once instead
        pass
    try:
        with _quiet():
            data = midi.translate.streamToMidiFile(score).writestr()
        return pretty_midi.PrettyMIDI(io.BytesIO(data))
    except Exception as err:
        raise InputError(f"music21 cannot turn this ABC tune into MIDI: {one_line(err)}") from None


@dataclass
class TuneRendering:
    """MIDI of each tune of a batch, None where the tune could not be rendered (see `errors`)."""

    midis: list[pretty_midi.PrettyMIDI | None] = field(default_factory=list)
    errors: list[str | None] = field(default_factory=list)

    @property
    def summary(self) -> str:
        rendered = sum(m is not None for m in self.midis)
        return (f"{rendered} of {len(self.midis)} tunes rendered; "
                f"{len(self.midis) - rendered} could not be parsed")


def render_tunes(tunes: Sequence[str]) -> TuneRendering:
    """Render every tune to MIDI; a tune music21 cannot read is counted, never fatal."""
    result = TuneRendering()
    for tune in tunes:
        try:
            midi, error = abc_to_midi(tune), None
        except InputError as err:
            midi, error = None, str(err)
        result.midis.append(midi)
        result.errors.append(error)
    return result


class AbcTokenizer(CharTokenizer):
    """Characters of ABC tunes; the text round-trips exactly and renders to MIDI through music21.

    `meters` and `units` are the meters and unit note lengths the training tunes write in `M:` and `L:` lines
    (`abc_header.meters_in`, `units_in`), kept with the vocabulary so that sampling can hold a tune to them
    (`valid_header.ValidHeader`); None in tokenizers saved before they were kept."""

    kind: ClassVar[str] = "abc"
    output_suffix: ClassVar[str] = ".abc"

    def __init__(self, chars: Iterable[str], meters: Iterable[str] | None = None, units: Iterable[str] | None = None):
        super().__init__(chars)
        self.meters: tuple[str, ...] | None = None if meters is None else tuple(sorted(set(meters)))
        self.units: tuple[str, ...] | None = None if units is None else tuple(sorted(set(units)))

    @classmethod
    def build(cls, documents: Any) -> AbcTokenizer:
        chars: set[str] = set()
        meters: set[str] = set()
        units: set[str] = set()
        for doc in documents:
            text = "".join(doc.pieces())
            chars.update(text)
            meters |= meters_in(text)
            units |= units_in(text)
        return cls(chars, meters, units)

    def to_dict(self) -> dict[str, Any]:
        kept = {name: list(values) for name, values in (("meters", self.meters), ("units", self.units))
                if values is not None}
        return {**super().to_dict(), **kept}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AbcTokenizer:
        return cls(data["chars"], data.get("meters"), data.get("units"))

    def finish_sample(self, document: str) -> str:
        """The tune with the `L:` its header implies where the model wrote none (`abc_header.with_unit_length`)."""
        return with_unit_length(document)

    def read_primer(self, path: str) -> str:
        """The first tune of an .abc file, from its `X:` line as training tunes start (`X:1` added if absent)."""
        text = super().read_primer(path)
        starts = [m.start() for m in _TUNE_START.finditer(text)]
        if not starts:
            return "X:1\n" + text
        return text[starts[0]: starts[1] if len(starts) > 1 else len(text)]
