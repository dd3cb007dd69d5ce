"""Training-data augmentation for MIDI corpora: transposed and time-stretched copies of each document.

The beat tokenizer counts in beats, and a stretch scales the tempo map with the notes, so for it a
stretch changes nothing: transpositions are its augmentation.

Copies are made lazily: each is a small picklable source whose `pieces()` reads and transforms the
file, so the token cache's worker processes do the work and nothing is held in memory.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

from genseq.corpora.sources import Document
from genseq.errors import ConfigError
from genseq.music.score import Score, read_score, stretch, transpose

MAX_TRANSPOSE = 24
STRETCH_RANGE = (0.25, 4.0)
_SETTING = re.compile(r"^\s*(transpose|stretch)\s*=\s*([-+]?[\d.]+)\s*\.\.\s*([-+]?[\d.]+)\s*$")


@dataclass(frozen=True)
class AugmentSpec:
    transpose: tuple[int, int] = (0, 0)
    """Inclusive range of semitone shifts; one copy per shift."""
    stretch: tuple[float, float] = (1.0, 1.0)
    """Range of time-stretch factors; each copy gets one factor drawn from it, fixed by its name."""


def parse_augment_spec(spec: str) -> AugmentSpec:
    """'transpose=-5..6' or 'transpose=-5..6,stretch=0.9..1.1' as an AugmentSpec (ConfigError if malformed)."""
    settings: dict[str, tuple[str, str]] = {}
    for part in spec.split(","):
        match = _SETTING.match(part)
        if not match or match[1] in settings:
            raise ConfigError(
                f"--augment {spec!r}: write transpose=LOW..HIGH and/or stretch=LOW..HIGH, "
                "comma-separated, each once (e.g. transpose=-5..6,stretch=0.9..1.1)"
            )
        settings[match[1]] = (match[2], match[3])
    try:
        shifts = tuple(int(v) for v in settings.get("transpose", ("0", "0")))
        factors = tuple(float(v) for v in settings.get("stretch", ("1", "1")))
    except ValueError:
        raise ConfigError(f"--augment {spec!r}: transpose takes whole semitones, stretch takes numbers") from None
    if not -MAX_TRANSPOSE <= shifts[0] <= shifts[1] <= MAX_TRANSPOSE:
        raise ConfigError(f"--augment {spec!r}: transpose needs LOW <= HIGH within ±{MAX_TRANSPOSE} semitones")
    if not STRETCH_RANGE[0] <= factors[0] <= factors[1] <= STRETCH_RANGE[1]:
        low, high = STRETCH_RANGE
        raise ConfigError(f"--augment {spec!r}: stretch needs LOW <= HIGH within {low}..{high}")
    return AugmentSpec(shifts, factors)


def copies_per_document(spec: str | None) -> int:
    """How many copies of each training piece `spec` makes (one per transposition; 1 without augmentation)."""
    if not spec:
        return 1
    low, high = parse_augment_spec(spec).transpose
    return high - low + 1


@dataclass(frozen=True)
class AugmentedDocument:
    """One transformed copy of a MIDI document; satisfies `genseq.lm.data.Source`."""

    document: Document
    semitones: int
    factor: float
    name: str
    binary: bool = True

    def pieces(self) -> Iterator[Score]:
        score = read_score(self.document.path, self.document.name)  # size is checked before reading
        yield stretch(transpose(score, self.semitones), self.factor)

    def fingerprint(self) -> str:
        return f"{self.document.fingerprint()}:transpose={self.semitones}:stretch={self.factor!r}"


def augment_documents(documents: list[Document], spec: str) -> list[AugmentedDocument]:
    """Every document once per transposition in `spec`, each with its stretch factor.

    Pitched notes that a transposition would push outside 0..127 are dropped from that copy (drums
    never move). Apply this to the training split only, so validation measures real pieces.
    """
    parsed = parse_augment_spec(spec)
    low, high = parsed.stretch
    copies = []
    for document in documents:
        for semitones in range(parsed.transpose[0], parsed.transpose[1] + 1):
            factor = round(low + (high - low) * _unit_draw(f"{document.name}:{semitones}"), 4)
            name = f"{document.name}[transpose={semitones:+d},stretch={factor:g}]"
            copies.append(AugmentedDocument(document, semitones, factor, name))
    return copies


def _unit_draw(key: str) -> float:
    """A number in [0, 1) fixed by `key`, so the same corpus always gets the same stretch factors."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()[:8], "big") / 2**64
