"""Token caches on disk and truncated-BPTT batches. Nothing here knows about text or music."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from genseq.errors import GenseqError, InputError
from genseq.files import atomic_file, write_atomic

CACHE_FORMAT = 1


class Source(Protocol):
    """What the cache reads: a named document that yields its content in pieces."""

    name: str
    binary: bool

    def pieces(self) -> Iterator[Any]: ...

    def fingerprint(self) -> str: ...


class Encoder(Protocol):
    end_of_document: int
    chunkable: bool

    def encode_array(self, piece: Any) -> np.ndarray: ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclass
class TokenCache:
    """Token ids of a document list, stored flat with end-of-document tokens between documents."""

    tokens: np.ndarray
    documents: int
    skipped: list[tuple[str, str]]
    """(document name, reason) of each document the tokenizer could not read."""
    path: str

    def __len__(self) -> int:
        return len(self.tokens)


def cache_key(documents: list[Source], settings: Any) -> str:
    """Changes when any document or the JSON-able `settings` (tokenizer, augmentation) change."""
    digest = hashlib.sha256()
    digest.update(json.dumps([CACHE_FORMAT, settings], sort_keys=True).encode())
    for doc in documents:
        digest.update(doc.fingerprint().encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()[:24]


def _encode_whole(tokenizer: Encoder, doc: Source) -> np.ndarray | str:
    """Ids of one non-chunkable document, or the reason it was skipped (unreadable files are not fatal)."""
    try:
        return np.concatenate([tokenizer.encode_array(piece) for piece in doc.pieces()])
    except GenseqError as err:
        return str(err)


_worker_tokenizer: Any = None


def _init_worker(tokenizer: Encoder) -> None:
    global _worker_tokenizer
    _worker_tokenizer = tokenizer


def _encode_in_worker(doc: Source) -> np.ndarray | str:
    return _encode_whole(_worker_tokenizer, doc)


def encoded_documents(
    documents: list[Source], tokenizer: Encoder, workers: int = 1
) -> Iterator[tuple[Source, Iterable[np.ndarray] | str]]:
    """Each document with its id pieces, or the reason it was skipped, in document order whatever the number
    of workers."""
    if tokenizer.chunkable:
        for doc in documents:
            yield doc, (tokenizer.encode_array(piece) for piece in doc.pieces())
    elif workers > 1 and len(documents) >= 4 * workers:
        # fork on Linux (as torch's DataLoader does): workers start in milliseconds with every module already
        # imported; spawn elsewhere (fork is unsafe on macOS), which re-imports genseq and torch in each worker
        context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        with context.Pool(workers, _init_worker, (tokenizer,)) as pool:
            for doc, ids in zip(documents, pool.imap(_encode_in_worker, documents, chunksize=8)):
                yield doc, ids if isinstance(ids, str) else [ids]
    else:
        for doc in documents:
            ids = _encode_whole(tokenizer, doc)
            yield doc, ids if isinstance(ids, str) else [ids]


def build_token_cache(
    documents: list[Source],
    tokenizer: Encoder,
    path: Path,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> TokenCache:
    """Encode `documents` into `path` in one streaming pass, written atomically.

    A document the tokenizer cannot read (a corrupt MIDI file) is skipped and recorded with its
    reason; the cache never holds half a document.
    """
    count, written, skipped = 0, 0, []
    end = np.array([tokenizer.end_of_document], dtype=np.int32)
    with atomic_file(path, "the token cache ") as out:
        for doc, pieces in encoded_documents(documents, tokenizer, workers):
            if isinstance(pieces, str):
                skipped.append((doc.name, pieces))
            else:
                for ids in pieces:
                    out.write(ids.astype(np.int32).tobytes())
                    count += len(ids)
                out.write(end.tobytes())
                count += 1
                written += 1
            if progress:
                progress(1)
        check_some_read(written, skipped)
    meta = {"format": CACHE_FORMAT, "tokens": count, "documents": written, "skipped": skipped}
    write_atomic(path.with_suffix(".json"), json.dumps(meta), "the token cache ")  # written last: marks it complete
    return load_token_cache(path)


def check_some_read(read: int, skipped: list[tuple[str, str]]) -> None:
    """Unreadable documents are skipped until none is left: then the first one's reason is the error."""
    if read == 0 and len(skipped) == 1:
        raise InputError(skipped[0][1])
    if read == 0:
        raise InputError(f"none of the {len(skipped)} documents could be read; the first: {skipped[0][1]}")


def load_token_cache(path: Path) -> TokenCache | None:
    """The cache at `path`, memory-mapped, or None when it is missing or incomplete."""
    meta_path = path.with_suffix(".json")
    if not path.exists() or not meta_path.exists():
        return None
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != CACHE_FORMAT or path.stat().st_size != 4 * meta["tokens"]:
        return None
    tokens = np.memmap(path, dtype=np.int32, mode="r") if meta["tokens"] else np.zeros(0, dtype=np.int32)
    skipped = [(name, reason) for name, reason in meta["skipped"]]
    return TokenCache(tokens=tokens, documents=meta["documents"], skipped=skipped, path=str(path))


class StreamBatches:
    """The flat token array cut into parallel streams read in windows, as char-rnn does.

    Stream b of `batch_size` covers one contiguous share of the array, so the hidden state at the
    end of one window is the right state to start the next (truncated back-propagation through
    time). Each epoch starts the streams at a small offset drawn from (seed, epoch) so windows do
    not always break at the same places. `rank` / `world_size` give each process its own streams.
    """

    def __init__(
        self, tokens: np.ndarray, batch_size: int, seq_len: int, seed: int = 0, rank: int = 0, world_size: int = 1
    ):
        if batch_size % world_size:
            raise InputError(f"--batch-size {batch_size} must be a multiple of the {world_size} processes")
        self.tokens, self.seq_len, self.seed = tokens, seq_len, seed
        self.batch_size = batch_size // world_size
        self.first_stream = rank * self.batch_size
        self.stream_len = len(tokens) // batch_size
        self.windows_per_epoch = (self.stream_len - 1 - seq_len) // seq_len
        if self.windows_per_epoch < 1:
            raise InputError(
                f"the training split has {len(tokens)} tokens, too few for {batch_size} streams of "
                f"{seq_len + 1}-token windows; use a smaller --batch-size or --seq-len, or more data"
            )

    def offset(self, epoch: int) -> int:
        return int(np.random.default_rng([self.seed, epoch]).integers(0, self.seq_len))

    def window(self, epoch: int, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets [batch, seq_len] of window `index` in `epoch`."""
        start = self.offset(epoch) + index * self.seq_len
        rows = [
            self.tokens[(self.first_stream + b) * self.stream_len + start :][: self.seq_len + 1]
            for b in range(self.batch_size)
        ]
        block = torch.from_numpy(np.stack(rows).astype(np.int64))
        return block[:, :-1], block[:, 1:]


def first_document(tokens: np.ndarray, end_token: int, limit: int = 1024) -> list[int]:
    """The first whole document of `tokens` with its end token (its last `limit` tokens), or [] if none ends.

    The sampler reads it before a sample so that a sample starts from the state the model has between
    documents in training, where the state is carried across them, rather than from a zero state.
    """
    chunk = 1 << 20
    for start in range(0, len(tokens), chunk):
        ends = np.flatnonzero(np.asarray(tokens[start : start + chunk]) == end_token)
        if len(ends):
            stop = start + int(ends[0]) + 1
            return np.asarray(tokens[max(0, stop - limit) : stop]).tolist()
    return []


def evaluation_windows(tokens: np.ndarray, batch_size: int, seq_len: int, max_tokens: int) -> list[torch.Tensor]:
    """The first `max_tokens` held-out tokens as streams of windows [batch, seq_len + 1] (overlapping by one)."""
    tokens = tokens[: max_tokens + 1]
    batch_size = max(1, min(batch_size, (len(tokens) - 1) // max(seq_len, 1)))
    stream_len = len(tokens) // batch_size
    if stream_len < 2:
        raise InputError(f"the validation split has {len(tokens)} tokens, too few to evaluate; give more data")
    seq_len = min(seq_len, stream_len - 1)
    block = torch.from_numpy(np.asarray(tokens[: batch_size * stream_len], dtype=np.int64)).view(batch_size, stream_len)
    return [block[:, i : i + seq_len + 1] for i in range(0, stream_len - 1, seq_len)]
