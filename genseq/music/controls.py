"""Folk-tune controls, as folkrnn.org offers them: a tune header as the primer, and transposition of what is written.

`folk_primer` builds the header an ABC model continues (`M:`, `L:`, `K:` after `X:1`, in the order the
training tunes have them); `transpose_abc` moves ABC text by semitones, key signature, notes,
accidentals and chord symbols together; `transpose_midi` moves a PrettyMIDI's pitched notes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from genseq.errors import InputError
from genseq.limits import check_transpose
from genseq.music.score import score_from_pretty_midi, to_pretty_midi, transpose

if TYPE_CHECKING:
    import pretty_midi

    from genseq.tokenizers import Tokenizer

MODES = {"": 0, "maj": 0, "ion": 0, "mix": -1, "dor": -2, "m": -3, "min": -3, "aeo": -3, "phr": -4, "loc": -5,
         "lyd": 1}
"""Key signature of each mode, in fifths from its major (ABC reads only a mode's first three letters)."""
LETTERS = "CDEFGAB"
_SEMITONES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_FIFTHS = {"F": -1, "C": 0, "G": 1, "D": 2, "A": 3, "E": 4, "B": 5}
_ACCIDENTALS = {"__": -2, "_": -1, "=": 0, "^": 1, "^^": 2}
_WRITTEN = {value: text for text, value in _ACCIDENTALS.items()}
_METER = re.compile(r"C\|?|\d{1,2}/\d{1,2}")
_UNIT = re.compile(r"1/(1|2|4|8|16|32|64)")
_KEY = re.compile(r"(?P<tonic>[A-G])(?P<sign>[#b]?)\s*(?P<mode>[A-Za-z]*)(?P<rest>.*)", re.DOTALL)


def _key_mode(word: str) -> str | None:
    word = word.lower()
    mode = word[:3] if len(word) >= 3 else word
    return mode if mode in MODES else None


def folk_primer(tokenizer: Tokenizer, meter: str | None = None, key: str | None = None,
                unit_length: str | None = None) -> str:
    """The tune header `X:1`, then `M:`, `L:` and `K:` as given, for an ABC model to continue.

    A value that is not ABC, or that holds a character the model's vocabulary cannot write, is an
    InputError naming it. With `key` given, the header is complete and the model writes the tune's body.
    """
    if tokenizer.kind != "abc":
        raise InputError(f"--meter, --key and --unit-length set an ABC tune's header; this is a {tokenizer.kind} model")
    fields = []
    for option, field, value, pattern, example in (
            ("--meter", "M", meter, _METER, "6/8, 3/4, C or C|"), ("--unit-length", "L", unit_length, _UNIT, "1/8"),
            ("--key", "K", key, None, "D, Dmix, Em, Ador or Bb")):
        if value is None:
            continue
        value = value.strip()
        match = _KEY.fullmatch(value) if pattern is None else pattern.fullmatch(value)
        if not match or (pattern is None and (match.group("rest").strip() or _key_mode(match.group("mode")) is None)):
            raise InputError(f"{option} {value!r} is not an ABC {option[2:].replace('-', ' ')}; write e.g. {example}")
        known = {"M": getattr(tokenizer, "meters", None), "L": getattr(tokenizer, "units", None)}.get(field)
        if known is not None and value not in known:  # sampling keeps a tune's meter and unit to its corpus's
            raise InputError(f"{option} {value!r}: no tune of this model's corpus is written in it; pick one of "
                             f"{', '.join(known)}")
        unknown = tokenizer.unknown_symbols(f"{field}:{value}\n")
        if unknown:
            raise InputError(f"{option} {value!r}: this model's vocabulary cannot write "
                             f"{', '.join(repr(c) for c in unknown)}; pick another value")
        fields.append(f"{field}:{value}\n")
    return "X:1\n" + "".join(fields)


def transpose_samples(tokenizer: Tokenizer, samples: Sequence[Any], semitones: int) -> list[Any]:
    """Samples of a music model moved by `semitones` (ABC text or PrettyMIDI, within ±MAX_TRANSPOSE); text models
    refuse."""
    if check_transpose(semitones) == 0:
        return list(samples)
    if tokenizer.kind == "char":
        raise InputError("--transpose moves music; this is a text (char) model")
    return [transpose_abc(s, semitones) if isinstance(s, str) else transpose_midi(s, semitones) for s in samples]


def transpose_midi(midi: pretty_midi.PrettyMIDI, semitones: int) -> pretty_midi.PrettyMIDI:
    """A copy with every pitched note moved by `score.transpose` (drums stay, notes pushed outside 0..127 are
    dropped); what a genseq sample holds (notes, programs, tempo map, meters) is kept."""
    check_transpose(semitones)
    return to_pretty_midi(transpose(score_from_pretty_midi(midi), semitones))


class _Key:
    """A key signature (accidental per letter) and how it maps notes when transposed by `semitones`."""

    def __init__(self, value: str, semitones: int):
        match = _KEY.match(value.strip())
        mode = _key_mode(match.group("mode")) if match else None
        self.text = value
        if match is None or mode is None:  # K:none, K:HP, ...: no signature to move; notes get accidentals
            self.signature, self.new_signature = _signature(0), _signature(0)
            self.steps = _steps("C", _spell((semitones % 12), 0)[0], semitones)
            return
        tonic, sign = match.group("tonic"), match.group("sign")
        accidental = {"#": 1, "b": -1, "": 0}[sign]
        fifths = _FIFTHS[tonic] + 7 * accidental + MODES[mode]
        new_letter, new_accidental = _spell((_SEMITONES[tonic] + accidental + semitones) % 12, MODES[mode])
        self.signature = _signature(fifths)
        self.new_signature = _signature(_FIFTHS[new_letter] + 7 * new_accidental + MODES[mode])
        self.steps = _steps(tonic, new_letter, semitones)
        lead = value[: len(value) - len(value.lstrip())]
        self.text = f"{lead}{new_letter}{'#' if new_accidental > 0 else 'b' if new_accidental < 0 else ''}" + \
            value.strip()[1 + len(sign):]


def _signature(fifths: int) -> dict[str, int]:
    sharps, flats = "FCGDAEB", "BEADGCF"
    signature = dict.fromkeys(LETTERS, 0)
    for letter in (sharps[:fifths] if fifths > 0 else flats[:-fifths]):
        signature[letter] = 1 if fifths > 0 else -1
    return signature


def _spell(pitch_class: int, mode_fifths: int) -> tuple[str, int]:
    """The tonic spelling of `pitch_class` whose key signature has the fewest sharps or flats."""
    candidates = [(letter, accidental) for letter in LETTERS for accidental in (-1, 0, 1)
                  if (_SEMITONES[letter] + accidental) % 12 == pitch_class]
    return min(candidates, key=lambda c: (abs(_FIFTHS[c[0]] + 7 * c[1] + mode_fifths), c[1] < 0))


def _steps(old_letter: str, new_letter: str, semitones: int) -> int:
    """Diatonic steps between the tonics, in the octave that `semitones` points to."""
    step = (LETTERS.index(new_letter) - LETTERS.index(old_letter)) % 7
    return step + 7 * round((semitones - step * 12 / 7) / 12)


_BODY = re.compile(r"""(?P<symbol>"[^"\n]*")|(?P<skip>![^!\n]*!|\+[^+\n]*\+|%.*)|(?P<field>\[[A-Za-z]:[^\]\n]*\])
    |(?P<bar>\|)|(?P<note>(?P<accidental>\^{1,2}|_{1,2}|=)?(?P<letter>[A-Ga-g])(?P<octave>[,']*))""", re.VERBOSE)
_FIELD_LINE = re.compile(r"^([A-Za-z]):(.*)$")
_CHORD_SYMBOL = re.compile(r'"([A-G])([#b]?)((?:maj|min|dim|aug|sus|add|m|M|[0-9+()o-])*)(?:/([A-G])([#b]?))?"')
"""A guitar chord such as "Am7" or "D/F#"; other quoted text (annotations, "Allegro") is left alone."""


def transpose_abc(text: str, semitones: int) -> str:
    """ABC text moved by `semitones`: each `K:` to the transposed key (spelled with the fewest accidentals),
    notes moved by the same interval with the accidentals they then need, chord symbols too."""
    if check_transpose(semitones) == 0:
        return text
    state = _Transposer(semitones)
    lines = []
    for line in text.split("\n"):
        field = _FIELD_LINE.match(line)
        if field and field.group(1) == "K":
            state.key = _Key(field.group(2), semitones)
            lines.append(f"K:{state.key.text}")
        elif field or line.startswith("%"):  # header and other fields (titles, lyrics) are not music
            lines.append(line)
        else:
            lines.append(_BODY.sub(state.token, line))
    return "\n".join(lines)


class _Transposer:
    def __init__(self, semitones: int):
        self.semitones = semitones
        self.key = _Key("C", semitones)
        self.written: dict[tuple[str, int], int] = {}
        self.heard: dict[tuple[str, int], int] = {}

    def token(self, match: re.Match) -> str:
        if match.group("bar"):
            self.written, self.heard = {}, {}
            return match.group(0)
        if match.group("field"):
            inner = match.group("field")[1:-1]
            if inner.startswith("K:"):
                self.key = _Key(inner[2:], self.semitones)
                return f"[K:{self.key.text}]"
            return match.group(0)
        if match.group("symbol"):
            return _CHORD_SYMBOL.sub(self.chord_symbol, match.group(0))
        if match.group("skip"):
            return match.group(0)
        return self.note(match)

    def note(self, match: re.Match) -> str:
        letter, marks = match.group("letter"), match.group("octave")
        octave = (5 if letter.islower() else 4) + marks.count("'") - marks.count(",")
        letter = letter.upper()
        written = match.group("accidental")
        if written:
            self.heard[(letter, octave)] = _ACCIDENTALS[written]
        accidental = self.heard.get((letter, octave), self.key.signature[letter])
        pitch = 12 * octave + _SEMITONES[letter] + accidental + self.semitones
        number = 7 * octave + LETTERS.index(letter) + self.key.steps
        new_letter, new_octave = LETTERS[number % 7], number // 7
        needed = pitch - 12 * new_octave - _SEMITONES[new_letter]
        while abs(needed) > 2:  # only with odd input (a double sharp moved a long way): spell on a neighbour
            number += 1 if needed > 0 else -1
            new_letter, new_octave = LETTERS[number % 7], number // 7
            needed = pitch - 12 * new_octave - _SEMITONES[new_letter]
        current = self.written.get((new_letter, new_octave), self.key.new_signature[new_letter])
        sign = ""
        if written or needed != current:
            sign = _WRITTEN[needed]
            self.written[(new_letter, new_octave)] = needed
        name = new_letter.lower() if new_octave >= 5 else new_letter
        return sign + name + ("'" * (new_octave - 5) if new_octave >= 5 else "," * (4 - new_octave))

    def chord_symbol(self, match: re.Match) -> str:
        flats = sum(self.key.new_signature.values()) < 0

        def moved(letter: str, sign: str) -> str:
            pitch_class = (_SEMITONES[letter] + {"#": 1, "b": -1, "": 0}[sign] + self.semitones) % 12
            names = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B") if flats else \
                ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
            return names[pitch_class]

        bass = f"/{moved(match.group(4), match.group(5))}" if match.group(4) else ""
        return f'"{moved(match.group(1), match.group(2))}{match.group(3)}{bass}"'
