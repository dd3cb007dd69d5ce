"""ABC tunes through music21: parsed to a score and rendered to MIDI, bounded in length, meter and time.

Hostile tunes make music21 run for minutes or for ever, so each parse runs under `MAX_RENDER_SECONDS` and tunes
past `MAX_TUNE_CHARS` or `MAX_METER` are refused before it starts; every music21 failure leaves as one
`InputError`.
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
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from genseq.errors import InputError, one_line

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
