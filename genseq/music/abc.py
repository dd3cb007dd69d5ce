"""ABC tunes through music21: parsed to a score and rendered to MIDI, bounded in length, meter and time.

Hostile tunes make music21 run for minutes or for ever, so each parse runs in a worker process (a small pool,
kept between parses) that is ended when it takes longer than `MAX_RENDER_SECONDS`; tunes past `MAX_TUNE_CHARS`
or `MAX_METER` are refused before it starts; every music21 failure leaves as one `InputError`.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import pickle
import queue
import re
import subprocess
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


MAX_IDLE_WORKERS = 2
"""Parsing processes kept waiting between parses (more start while threads parse at once)."""
WORKER_START_SECONDS = 120.0
"""How long a parsing process may take to start (Python and music21's import), not counted in a parse's time."""


class _Worker:
    """A Python process that parses ABC with music21, so that a parse running past its time is ended by ending
    the process (a thread cannot be stopped from outside); reused while its parses finish in time.

    A plain subprocess rather than `multiprocessing`, whose spawned children re-run the user's main script; it
    imports this very genseq (the parent's `sys.path`) and speaks pickle over its stdin and stdout. A thread
    reads its answers, so that waiting for one can time out on every platform."""

    def __init__(self) -> None:
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.process = subprocess.Popen(
            [sys.executable, "-P", "-c", f"from {__name__} import _serve; _serve()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=environment)
        self.answers: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True, name="genseq-abc-answers").start()
        self.ready = False

    def _read(self) -> None:
        try:
            while True:
                self.answers.put(pickle.load(self.process.stdout))
        except Exception:  # noqa: BLE001 - end of the pipe (the process ended) or a torn answer
            self.answers.put(None)

    def run(self, job: str, text: str, seconds: float) -> Any:
        """What `job` makes of `text`; TimeoutError after `seconds`, EOFError when the process died."""
        if not self.ready:
            if self._answer(WORKER_START_SECONDS) != "ready":
                raise EOFError
            self.ready = True
        pickle.dump((job, text), self.process.stdin)
        self.process.stdin.flush()
        ok, value = self._answer(seconds)
        if not ok:
            raise InputError(value)
        return value

    def _answer(self, seconds: float) -> Any:
        try:
            answer = self.answers.get(timeout=seconds)
        except queue.Empty:
            raise TimeoutError from None
        if answer is None:
            raise EOFError
        return answer

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                pipe.close()


_idle: list[_Worker] = []
_idle_lock = threading.Lock()


def _in_worker(job: str, text: str) -> Any:
    """Run `job` on `text` in a parsing process, within MAX_RENDER_SECONDS; InputError when music21 cannot
    read the tune, takes longer, or its process dies (out of memory). One spare process is always starting or
    waiting, so a parse after one that ran out of time does not wait for Python and music21 to start."""
    with _idle_lock:
        worker = _idle.pop() if _idle else _Worker()
        if not _idle:
            _idle.append(_Worker())
    reusable = False
    try:
        result = worker.run(job, text, MAX_RENDER_SECONDS)
        reusable = True
        return result
    except InputError:  # music21's answer: the worker is fine
        reusable = True
        raise
    except TimeoutError:
        raise InputError(f"music21 took longer than {MAX_RENDER_SECONDS:g} s on this ABC tune; not rendered") from None
    except (EOFError, OSError):
        raise InputError("music21 ran out of memory or crashed on this ABC tune; not rendered") from None
    finally:  # a worker that timed out, died or was interrupted mid-parse would answer late: it goes
        with _idle_lock:
            kept = reusable and len(_idle) < MAX_IDLE_WORKERS
            if kept:
                _idle.append(worker)
        if not kept:
            worker.close()


def _serve() -> None:
    """A parsing process: answers each pickled (job, text) on stdin with (True, result) or (False, the
    InputError's message) on stdout, until stdin closes. Anything music21 prints goes to stderr."""
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    import music21  # noqa: F401 - before "ready", so the first parse's time is the parse's alone

    jobs = {"score": _frozen_score, "midi": _midi_bytes}
    pickle.dump("ready", answers)
    answers.flush()
    while True:
        try:
            job, text = pickle.load(sys.stdin.buffer)
        except EOFError:
            return
        try:
            answer = (True, jobs[job](text))
            data = pickle.dumps(answer)
        except InputError as err:
            data = pickle.dumps((False, str(err)))
        except Exception as err:  # noqa: BLE001 - a music21 failure outside the guarded calls, or a score that
            data = pickle.dumps((False, f"music21 cannot parse this ABC tune: {one_line(err)}"))  # cannot pickle
        answers.write(data)
        answers.flush()


def _check_bounds(text: str) -> None:
    """Refuse, before any process is asked, a tune too long or of a meter music21 would spend minutes on."""
    if len(text) > MAX_TUNE_CHARS:
        raise InputError(f"ABC tune of {len(text):,} characters is longer than {MAX_TUNE_CHARS:,}; not rendered")
    for match in _METER_FIELD.finditer(text):
        beats, unit = (n.lstrip("0") for n in filter(None, match.groups()))
        if not all(n and len(n) <= 9 and int(n) <= MAX_METER for n in (beats, unit)):
            raise InputError(f"the meter {beats[:9] or 0}/{unit[:9] or 0} of this ABC tune is beyond "
                             f"{MAX_METER}/{MAX_METER}; not rendered")


def parse_abc(text: str) -> Score:
    """The first tune of `text` that has notes, as a music21 score; InputError when music21 cannot read
    it or takes longer than MAX_RENDER_SECONDS."""
    from music21 import freezeThaw

    _check_bounds(text)
    thawer = freezeThaw.StreamThawer()
    thawer.openStr(_in_worker("score", text))
    return thawer.stream


def _frozen_score(text: str) -> bytes:
    """`_parse_abc` as music21's own pickle (a score holds weak references, which plain pickle refuses)."""
    from music21 import freezeThaw

    return freezeThaw.StreamFreezer(_parse_abc(text)).writeStr()


def _parse_abc(text: str) -> Score:
    from music21 import converter, stream  # music21 takes seconds to import; only rendering needs it

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
    import pretty_midi

    _check_bounds(text)
    data = _in_worker("midi", text)
    try:
        return pretty_midi.PrettyMIDI(io.BytesIO(data))
    except Exception as err:  # music21 wrote what pretty_midi refuses (ticks beyond its bound)
        raise InputError(f"music21 cannot turn this ABC tune into MIDI: {one_line(err)}") from None


def _sound_chord_symbols(score: Score) -> None:
    """Chord symbols (`"G"`, `"D7"`) play as block chords under the tune, each until the next: music21 reads them
    without a length, and its MIDI writer then holds them for many bars. Where their lengths cannot be worked
    out, the tune plays without them."""
    from music21 import harmony

    for part in score.parts:
        symbols = list(part.recurse().getElementsByClass(harmony.ChordSymbol))
        if not symbols:
            continue
        try:
            with _quiet():
                harmony.realizeChordSymbolDurations(part)
        except Exception:  # music21 raises many kinds; the melody must still play
            for symbol in symbols:
                symbol.activeSite.remove(symbol)
            continue
        for symbol in symbols:
            symbol.writeAsChord = True


def _drop_repeats(score: Score) -> None:
    """Repeat signs and first and second endings made plain bar lines, so a tune whose repeats do not pair up
    (music21 cannot expand them, and its MIDI writer tries again and fails) still plays, through once."""
    from music21 import bar, spanner

    for measure in score.recurse().getElementsByClass("Measure"):
        for side in ("leftBarline", "rightBarline"):
            if isinstance(getattr(measure, side), bar.Repeat):
                setattr(measure, side, bar.Barline("regular"))
    for bracket in list(score.recurse().getElementsByClass(spanner.RepeatBracket)):
        bracket.activeSite.remove(bracket)


def _midi_bytes(text: str) -> bytes:
    from music21 import midi

    score = _parse_abc(text)
    _sound_chord_symbols(score)
    try:
        with _quiet():
            score = score.expandRepeats()
    except Exception:  # unbalanced repeat signs: play the tune through once instead
        _drop_repeats(score)
    try:
        with _quiet():
            return midi.translate.streamToMidiFile(score).writestr()
    except Exception as err:
        raise InputError(f"music21 cannot turn this ABC tune into MIDI: {one_line(err)}") from None
