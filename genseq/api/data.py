"""Training data: documents from a source or a built-in corpus, the tokenizer built on them, and token caches."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genseq.console import counting_bar, say
from genseq.corpora.augment import augment_documents
from genseq.corpora.sources import (
    Document,
    builtin_corpora,
    builtin_documents,
    find_documents,
    guess_tokenizer,
    source_identity,
    split_documents,
)
from genseq.errors import ConfigError, InputError
from genseq.files import cache_dir, write_atomic
from genseq.lm.data import TokenCache, build_token_cache, cache_key, load_token_cache
from genseq.lm.runtime import available_cores
from genseq.tokenizers import TOKENIZERS, Tokenizer, new_tokenizer_settings, tokenizer_from_dict


@dataclass
class PreparedData:
    tokenizer: Tokenizer
    train: TokenCache
    val: TokenCache
    description: dict[str, Any]


def _documents(
    source: str | None, corpus: str | None, tokenizer: str | None, encoding: str
) -> tuple[list[Document], str]:
    if (source is None) == (corpus is None):
        raise InputError("name exactly one data source: a file, folder or glob, or --corpus NAME")
    if corpus is not None:
        documents, recipe = builtin_documents(corpus)
        return documents, tokenizer or recipe["tokenizer"]
    kind = tokenizer or guess_tokenizer(source)
    return find_documents(source, kind, encoding), kind


def build_tokenizer(kind: str, documents: list[Document]) -> Tokenizer:
    """A tokenizer for `documents`; a fitted vocabulary is cached so unchanged data is read once."""
    if kind not in TOKENIZERS:
        raise InputError(f"unknown tokenizer {kind!r}; known: {', '.join(sorted(TOKENIZERS))}")
    cls = TOKENIZERS[kind]
    key = cache_key(documents, {"vocabulary": new_tokenizer_settings()[kind]})
    path = cache_dir() / "vocab" / f"{kind}-{key}.json"
    if path.exists():
        return tokenizer_from_dict(json.loads(path.read_text(encoding="utf-8")))
    tokenizer = cls.build(documents)
    write_atomic(path, json.dumps(tokenizer.to_dict()))
    return tokenizer


def data_tokenizer(source: str | None, corpus: str | None, kind: str, encoding: str = "utf-8") -> Tokenizer:
    """A `kind` tokenizer built on a source's documents alone (fine-tuning joins it to the base model's)."""
    return build_tokenizer(kind, _documents(source, corpus, kind, encoding)[0])


def _token_cache(documents: list[Document], tokenizer: Tokenizer, label: str, progress: bool) -> TokenCache:
    path = cache_dir() / "tokens" / f"{cache_key(documents, tokenizer.to_dict())}.bin"
    cached = load_token_cache(path)
    if cached is not None:
        return cached
    workers = available_cores()
    with counting_bar(f"tokenizing {label}", len(documents), enabled=progress) as advance:
        return build_token_cache(documents, tokenizer, path, workers=workers, progress=advance)


def prepare_data(
    source: str | None = None,
    *,
    corpus: str | None = None,
    tokenizer: str | Tokenizer | None = None,
    encoding: str = "utf-8",
    val_fraction: float = 0.1,
    seed: int = 1337,
    augment: str | None = None,
    progress: bool = True,
) -> PreparedData:
    """Documents -> train/validation split -> tokenizer -> token caches (built once, then memory-mapped).

    `augment` (MIDI only, e.g. "transpose=-5..6,stretch=0.9..1.1") adds transformed copies of the
    training documents; validation stays on the real pieces.
    """
    given = tokenizer.to_dict() if isinstance(tokenizer, Tokenizer) else tokenizer
    source = None if source is None else str(source)
    settings = [source, corpus, given, encoding, val_fraction, seed, augment, new_tokenizer_settings()]
    record_path = cache_dir() / "prepared" / f"{cache_key([], [source_identity(source, corpus), *settings])}.json"
    prepared = _read_prepared(record_path)
    if prepared is not None:
        return prepared
    kind = tokenizer.kind if isinstance(tokenizer, Tokenizer) else tokenizer
    documents, kind = _documents(source, corpus, kind, encoding)
    split = split_documents(documents, val_fraction, seed)
    if not isinstance(tokenizer, Tokenizer):
        tokenizer = build_tokenizer(kind, documents)
    if augment:
        if not tokenizer.reads_midi:
            raise ConfigError(f"--augment works on MIDI data; this run uses the {kind} tokenizer")
        split.train = augment_documents(split.train, augment)
    train = _token_cache(split.train, tokenizer, "train split", progress)
    val = _token_cache(split.val, tokenizer, "validation split", progress)
    origin = {doc.name: getattr(doc, "document", doc).name for doc in split.train}  # augmented copies: their file
    reasons = {origin.get(name, name): reason for name, reason in train.skipped + val.skipped}
    warn_skipped(reasons, len(documents))
    description = {
        "source": source, "corpus": corpus, "tokenizer_kind": kind,
        "encoding": encoding, "augment": augment, "documents": len(documents), "train_documents": train.documents,
        "val_documents": val.documents, "train_tokens": len(train), "val_tokens": len(val), "skipped": len(reasons),
    }
    if corpus is not None and not augment:  # `genseq corpus list` shows the corpus itself, not augmented copies
        stats = cache_dir() / "corpora" / f"{corpus}.json"
        write_atomic(stats, json.dumps(description))
    write_atomic(record_path, json.dumps({
        "tokenizer": tokenizer.to_dict(), "train": train.path, "val": val.path, "description": description,
        "skipped": reasons}))
    return PreparedData(tokenizer, train, val, description)


def _read_prepared(path: Path) -> PreparedData | None:
    """What `prepare_data` found last time for unchanged sources and settings (no document is read again)."""
    if not path.exists():
        return None
    record = json.loads(path.read_text(encoding="utf-8"))
    train, val = load_token_cache(Path(record["train"])), load_token_cache(Path(record["val"]))
    if train is None or val is None:
        return None
    warn_skipped(record["skipped"], record["description"]["documents"])
    return PreparedData(tokenizer_from_dict(record["tokenizer"]), train, val, record["description"])


def warn_skipped(reasons: dict[str, str], total: int) -> None:
    """Printed even when quiet, and on every run: a user must know what was left out."""
    for name in sorted(reasons):
        say(f"[yellow]warning:[/] skipped {reasons[name]}")
    if reasons:
        say(f"skipped {len(reasons)} file(s) of {total} that could not be read or encoded (reasons above)")


def corpus_summaries() -> list[dict[str, Any]]:
    """Each built-in corpus with its recipe and, once built, its document and token counts."""
    rows = []
    for name, recipe in sorted(builtin_corpora().items()):
        stats_path = cache_dir() / "corpora" / f"{name}.json"
        stats = json.loads(stats_path.read_text(encoding="utf-8")) if stats_path.exists() else {}
        rows.append({
            "name": name, "description": recipe.get("description", ""), "tokenizer": recipe["tokenizer"],
            "documents": stats.get("documents"), "tokens": stats.get("train_tokens", 0) + stats.get("val_tokens", 0)
            if stats else None,
        })
    return rows
