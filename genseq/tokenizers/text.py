"""Characters as tokens: any Unicode text, lossless."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import numpy as np

from genseq.errors import CheckpointError
from genseq.tokenizers.base import SPECIAL_TOKENS, Tokenizer


def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


class CharTokenizer(Tokenizer):
    """One token per Unicode code point seen in the corpus, ordered by code point."""

    kind: ClassVar[str] = "char"
    chunkable: ClassVar[bool] = True
    unit: ClassVar[str] = "char"

    def __init__(self, chars: Iterable[str]):
        self.chars: list[str] = sorted(set(chars))
        if any(len(c) != 1 for c in self.chars):
            raise CheckpointError("character vocabulary holds entries that are not single characters")
        self._points = np.array([ord(c) for c in self.chars], dtype=np.uint32)
        self._table = np.array(list(SPECIAL_TOKENS) + self.chars, dtype=object)

    @classmethod
    def fit(cls, pieces: Iterable[str]) -> CharTokenizer:
        """Build the vocabulary from every character in `pieces` (streamed, never joined)."""
        seen: set[str] = set()
        for piece in pieces:
            seen.update(piece)
        return cls(seen)

    @classmethod
    def build(cls, documents: Any) -> CharTokenizer:
        return cls.fit(piece for doc in documents for piece in doc.pieces())

    @property
    def vocab_size(self) -> int:
        return len(SPECIAL_TOKENS) + len(self.chars)

    def encode_array(self, piece: str) -> np.ndarray:
        points = _code_points(piece)
        if len(self._points) == 0:
            return np.full(len(points), self.unknown, dtype=np.int32)
        index = np.searchsorted(self._points, points).clip(max=len(self._points) - 1)
        ids = index.astype(np.int32) + len(SPECIAL_TOKENS)
        ids[self._points[index] != points] = self.unknown
        return ids

    def encode(self, document: str) -> list[int]:
        return self.encode_array(document).tolist()

    def decode(self, ids: Sequence[int]) -> str:
        ids = np.asarray(ids, dtype=np.int64)
        ids = ids[(ids >= len(SPECIAL_TOKENS)) & (ids < self.vocab_size)]
        return "".join(self._table[ids])

    def extended(self, other: Tokenizer) -> CharTokenizer:
        return CharTokenizer([*self.chars, *getattr(other, "chars", [])])

    def unknown_symbols(self, piece: str) -> list[str]:
        known = set(self.chars)
        return sorted({c for c in piece if c not in known})

    def token_name(self, token_id: int) -> str:
        return str(self._table[token_id])

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "chars": "".join(self.chars)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CharTokenizer:
        return cls(data["chars"])
