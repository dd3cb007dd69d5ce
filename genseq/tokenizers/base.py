"""The interface every encoding implements: training and sampling see nothing else."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from genseq.files import write_atomic

PAD = "<pad>"
END_OF_DOCUMENT = "<eod>"
UNKNOWN = "<unk>"
SPECIAL_TOKENS = (PAD, END_OF_DOCUMENT, UNKNOWN)


class Tokenizer(ABC):
    """Maps one document to token ids and back.

    Ids 0, 1 and 2 are always the named special tokens `pad`, `end_of_document` and `unknown`,
    so code that handles any tokenizer can rely on them without magic numbers.
    """

    kind: ClassVar[str]
    """Registry name, stored in checkpoints ("char", "abc", "midi", "beat", "voices")."""
    output_suffix: ClassVar[str] = ".txt"
    """File suffix of a decoded document."""
    unit: ClassVar[str] = "token"
    """What one token is, for reports such as "nats/char"."""
    reads_midi: ClassVar[bool] = False
    """True when documents are MIDI files: read as binary .mid/.midi, primed with MIDI, open to --augment."""

    pad: int = 0
    end_of_document: int = 1
    unknown: int = 2

    @property
    @abstractmethod
    def vocab_size(self) -> int: ...

    @classmethod
    def build(cls, documents: Any) -> Tokenizer:
        """A tokenizer for a corpus (its documents have `pieces()`); fixed vocabularies ignore them."""
        return cls()

    @abstractmethod
    def encode(self, document: Any) -> list[int]:
        """Token ids of one document, without the end-of-document token."""

    @abstractmethod
    def decode(self, ids: Sequence[int]) -> Any:
        """The document that `ids` stand for; special tokens are dropped."""

    @abstractmethod
    def token_name(self, token_id: int) -> str:
        """A readable name of one token, for `genseq encode` and error messages."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data that `from_dict` rebuilds this tokenizer from."""

    @classmethod
    @abstractmethod
    def from_dict(cls, data: dict[str, Any]) -> Tokenizer: ...

    def encode_array(self, piece: Any) -> np.ndarray:
        """`encode` as an int32 array; encodings with a vectorised path override this."""
        return np.asarray(self.encode(piece), dtype=np.int32)

    chunkable: ClassVar[bool] = False
    """True when encoding a document piece by piece equals encoding it whole (character codes)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tokenizer) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(repr(sorted(self.to_dict().items())))

    def extended(self, other: Tokenizer) -> Tokenizer:
        """This tokenizer grown by the symbols `other` (built on new data) knows and it lacks, for fine-tuning; a
        fixed vocabulary (MIDI events) returns itself, and new data's unknown events encode as `unknown`."""
        return self

    def unknown_symbols(self, piece: Any) -> list[str]:
        """Symbols of `piece` outside the vocabulary (named in primer errors)."""
        return []

    def finish_sample(self, document: Any) -> Any:
        """A sampled document as it is handed out: itself here; an encoding adds what its format says the
        document means where the model left it out (ABC: a header's `L:`)."""
        return document

    def write(self, document: Any, path: str) -> None:
        """Save a decoded document to `path` (text here; MIDI tokenizers write a .mid file)."""
        write_atomic(path, document)

    def read_primer(self, path: str) -> Any:
        """A primer document from a file of this tokenizer's format."""
        with open(path, encoding="utf-8") as handle:
            return handle.read()
