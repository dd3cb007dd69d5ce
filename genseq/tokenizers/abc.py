"""ABC notation as characters: one tune per document, decoded back to its exact text."""

from __future__ import annotations

from typing import ClassVar

from genseq.tokenizers.text import CharTokenizer


class AbcTokenizer(CharTokenizer):
    """Characters of ABC tunes; the text round-trips exactly and renders to MIDI through music21."""

    kind: ClassVar[str] = "abc"
    output_suffix: ClassVar[str] = ".abc"
