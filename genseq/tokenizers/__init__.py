"""Encodings: each turns one kind of document into token ids and back."""

from __future__ import annotations

from typing import Any

from genseq.errors import CheckpointError
from genseq.tokenizers.abc import AbcTokenizer
from genseq.tokenizers.base import END_OF_DOCUMENT, PAD, SPECIAL_TOKENS, UNKNOWN, Tokenizer
from genseq.tokenizers.midi import MidiTokenizer
from genseq.tokenizers.text import CharTokenizer

TOKENIZERS: dict[str, type[Tokenizer]] = {t.kind: t for t in (CharTokenizer, AbcTokenizer, MidiTokenizer)}


def tokenizer_from_dict(data: dict[str, Any]) -> Tokenizer:
    """Rebuild a tokenizer saved with `Tokenizer.to_dict`."""
    kind = data.get("kind")
    if kind not in TOKENIZERS:
        raise CheckpointError(f"unknown tokenizer kind {kind!r}; known: {', '.join(sorted(TOKENIZERS))}")
    return TOKENIZERS[kind].from_dict(data)


__all__ = [
    "END_OF_DOCUMENT", "PAD", "SPECIAL_TOKENS", "UNKNOWN", "TOKENIZERS",
    "AbcTokenizer", "CharTokenizer", "MidiTokenizer", "Tokenizer", "tokenizer_from_dict",
]
