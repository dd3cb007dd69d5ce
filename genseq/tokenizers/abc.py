"""ABC notation as characters: one tune per document, decoded back to its exact text.

A tune renders to MIDI through music21. Tunes a model writes are often incomplete, so rendering
first completes the header the way ABC 2.1 defines its defaults (`complete_abc`); the text the
tokenizer decodes is never changed, and a sampled tune only gains the `L:` its header implies
(`AbcTokenizer.finish_sample`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, ClassVar

from genseq.music.abc_header import meters_in, units_in, with_unit_length
from genseq.tokenizers.base import Tokenizer
from genseq.tokenizers.text import CharTokenizer

_TUNE_START = re.compile(r"^X:", re.MULTILINE)


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

    def extended(self, other: Tokenizer) -> AbcTokenizer:
        """The characters, meters and units of both (a tokenizer saved before meters and units were kept stays
        without them)."""
        def joined(mine: tuple[str, ...] | None, theirs: tuple[str, ...] | None) -> tuple[str, ...] | None:
            return None if mine is None else (*mine, *(theirs or ()))

        return AbcTokenizer([*self.chars, *getattr(other, "chars", [])],
                            joined(self.meters, getattr(other, "meters", None)),
                            joined(self.units, getattr(other, "units", None)))

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
