"""Encodings: each turns one kind of document into token ids and back."""

from __future__ import annotations

from typing import Any

from genseq.errors import CheckpointError
from genseq.tokenizers.abc import AbcTokenizer
from genseq.tokenizers.base import END_OF_DOCUMENT, PAD, SPECIAL_TOKENS, UNKNOWN, Tokenizer
from genseq.tokenizers.beat import BeatTokenizer
from genseq.tokenizers.midi import MidiTokenizer
from genseq.tokenizers.text import CharTokenizer
from genseq.tokenizers.voices import VoicesTokenizer

TOKENIZERS: dict[str, type[Tokenizer]] = {
    t.kind: t for t in (CharTokenizer, AbcTokenizer, MidiTokenizer, BeatTokenizer, VoicesTokenizer)
}


def reads_midi(kind: str) -> bool:
    """True when tokenizer `kind` reads MIDI files (the one test for "a MIDI model"; False for unknown kinds)."""
    return kind in TOKENIZERS and TOKENIZERS[kind].reads_midi


def new_tokenizer_settings() -> dict[str, dict[str, Any]]:
    """The settings of each kind's tokenizer before it sees data; records that store a built tokenizer are keyed
    on them, so a changed default (such as beat's tempo tokens) is never served from an older record."""
    return {kind: cls.build([]).to_dict() for kind, cls in TOKENIZERS.items()}


def tokenizer_from_dict(data: dict[str, Any]) -> Tokenizer:
    """Rebuild a tokenizer saved with `Tokenizer.to_dict`."""
    kind = data.get("kind")
    if kind not in TOKENIZERS:
        raise CheckpointError(f"unknown tokenizer kind {kind!r}; known: {', '.join(sorted(TOKENIZERS))}")
    return TOKENIZERS[kind].from_dict(data)


__all__ = [
    "END_OF_DOCUMENT", "PAD", "SPECIAL_TOKENS", "UNKNOWN", "TOKENIZERS",
    "AbcTokenizer", "BeatTokenizer", "CharTokenizer", "MidiTokenizer", "Tokenizer", "VoicesTokenizer", "reads_midi",
    "new_tokenizer_settings", "tokenizer_from_dict",
]
