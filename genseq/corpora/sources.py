"""What a user names (a file, a folder, a glob, a built-in corpus) turned into documents."""

from __future__ import annotations

import codecs
import glob
import gzip
import hashlib
import importlib.util
import json
import math
import os
import random
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from genseq.errors import InputError
from genseq.files import cache_dir, write_atomic
from genseq.music.abc_header import REQUIRED_FIELDS, clean_tunes
from genseq.music.score import MIDI_SUFFIXES
from genseq.tokenizers import reads_midi

PIECE_BYTES = 1 << 22
TEXT_SUFFIXES = {"char": None, "abc": {".abc"}, "midi": set(MIDI_SUFFIXES)}
"""File suffixes read from a folder or glob for each tokenizer kind (None: every file but MIDI)."""


@dataclass(frozen=True)
class Document:
    """One document: text held in memory, or a file (or a byte range of one) read on demand."""

    name: str
    text: str | None = None
    path: str | None = None
    start: int = 0
    end: int | None = None
    encoding: str = "utf-8"
    binary: bool = False

    def pieces(self, size: int = PIECE_BYTES) -> Iterator[str | bytes]:
        """The content in order, in pieces of about `size` bytes (binary documents: their path, read by the
        tokenizer, which caps what it reads)."""
        if self.text is not None:
            yield self.text
            return
        if self.binary:
            yield Path(self.path)
            return
        decoder = codecs.getincrementaldecoder(self.encoding)()
        position = self.start
        with open(self.path, "rb") as handle:
            handle.seek(self.start)
            while self.end is None or position < self.end:
                want = size if self.end is None else min(size, self.end - position)
                chunk = handle.read(want)
                final = not chunk or len(chunk) < want or position + len(chunk) == self.end
                try:
                    text = decoder.decode(chunk, final=final)
                except UnicodeDecodeError as err:
                    offset = position - len(decoder.getstate()[0]) + err.start
                    raise InputError(
                        f"{self.path} is not valid {self.encoding}: byte {offset} "
                        f"(0x{chunk[max(err.start, 0):][:1].hex() or '??'}) cannot be decoded; "
                        "pass --encoding with the file's encoding, e.g. --encoding latin-1"
                    ) from None
                position += len(chunk)
                if text:
                    yield text
                if final:
                    break

    def read(self) -> str | bytes:
        if self.binary:
            with open(self.path, "rb") as handle:
                return handle.read()
        return "".join(self.pieces())

    def fingerprint(self) -> str:
        """Changes whenever the content may have changed (size and mtime for files)."""
        if self.text is not None:
            return hashlib.sha1(self.text.encode("utf-8", "surrogatepass")).hexdigest()
        stat = os.stat(self.path)
        return f"{os.path.abspath(self.path)}:{stat.st_size}:{stat.st_mtime_ns}:{self.start}:{self.end}:{self.encoding}"


@dataclass
class Split:
    train: list[Document]
    val: list[Document]
    skipped: list[str] = field(default_factory=list)


def guess_tokenizer(source: str) -> str:
    """The tokenizer kind suggested by the files a user named (MIDI, ABC, else characters)."""
    suffixes = {Path(p).suffix.lower() for p in expand_source(source)}
    if suffixes and suffixes <= TEXT_SUFFIXES["midi"]:
        return "midi"
    if suffixes and suffixes <= TEXT_SUFFIXES["abc"]:
        return "abc"
    return "char"


def expand_source(source: str) -> list[str]:
    """The files a source names: the file itself, every file under a folder (hidden ones left out), or a glob's."""
    path = Path(source).expanduser()
    if path.is_file():
        return [str(path)]
    if path.is_dir():
        return sorted(str(p) for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    return sorted(p for p in glob.glob(str(path), recursive=True) if os.path.isfile(p))


def source_identity(source: str | None, corpus: str | None) -> list | dict:
    """What decides the documents of a source and is much cheaper to read than them: the path, size and
    mtime of every file it names, or for a built-in corpus its recipe and the file it reads (its packaged text, or
    the installed music21, whose `__init__.py` changes mtime with every install; asking its version takes 10 ms)."""
    if corpus is None:
        paths = expand_source(source)
    else:
        recipe = builtin_corpora().get(corpus) or {}
        packaged = recipe.get("source") == "packaged-text"
        paths = [str(_packaged_file(recipe)) if packaged else importlib.util.find_spec("music21").origin]
    files = [(path, (stat := os.stat(path)).st_size, stat.st_mtime_ns) for path in paths]
    return files if corpus is None else {"recipe": builtin_corpora().get(corpus), "files": files}


def find_documents(source: str, tokenizer: str = "char", encoding: str = "utf-8") -> list[Document]:
    """Documents from a file, a folder (recursively) or a glob, for the given tokenizer kind."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InputError(f"unknown --encoding {encoding!r}; give a Python codec name such as utf-8 or latin-1") \
            from None
    named_file = Path(source).expanduser().is_file()
    paths = expand_source(source)
    if not paths and Path(source).expanduser().is_dir():
        raise InputError(f"{source} is an empty folder (hidden files aside); put the files to read in it")
    if not paths:
        raise InputError(f"{source}: no such file, folder or glob match; check the path")
    midi = reads_midi(tokenizer)
    wanted = TEXT_SUFFIXES["midi"] if midi else TEXT_SUFFIXES.get(tokenizer)
    if not named_file:
        if wanted is None:
            paths = [p for p in paths if Path(p).suffix.lower() not in TEXT_SUFFIXES["midi"]]
        else:
            paths = [p for p in paths if Path(p).suffix.lower() in wanted]
        if not paths:
            kinds = "any text files" if wanted is None else " or ".join(sorted(wanted)) + " files"
            raise InputError(f"{source}: holds no usable file for the {tokenizer} tokenizer (looked for {kinds})")
    documents = []
    for path in paths:
        if os.path.getsize(path) == 0 and not midi:  # an empty MIDI file is skipped and counted later
            if named_file:
                raise InputError(f"{path} is empty; give a file with some text in it")
            continue
        if midi:
            documents.append(Document(name=path, path=path, binary=True))
        elif tokenizer == "abc":
            text = Document(name=path, path=path, encoding=encoding).read()
            documents.extend(Document(name=f"{path}#{i}", text=tune) for i, tune in enumerate(split_abc_tunes(text)))
        else:
            documents.append(Document(name=path, path=path, encoding=encoding))
    if not documents:
        raise InputError(f"{source}: every file is empty; give files with content")
    return documents


def split_abc_tunes(text: str) -> list[str]:
    """ABC tunes of a file, one per `X:` header; text before the first header is file-level and dropped."""
    tunes, current = [], None
    for line in text.splitlines(keepends=True):
        if line.startswith("X:"):
            if current:
                tunes.append("".join(current).strip() + "\n")
            current = [line]
        elif current is not None:
            current.append(line)
    if current:
        tunes.append("".join(current).strip() + "\n")
    return tunes


def split_documents(documents: list[Document], val_fraction: float, seed: int = 0) -> Split:
    """Hold out `val_fraction` of the documents (chosen by `seed`); one document is cut by position."""
    if not 0 < val_fraction < 1:
        raise InputError(f"validation fraction {val_fraction} must lie strictly between 0 and 1")
    if len(documents) == 1:
        return Split(*_split_by_position(documents[0], val_fraction))
    order = list(range(len(documents)))
    random.Random(seed).shuffle(order)
    held = set(order[: max(1, math.ceil(val_fraction * len(documents)))])
    return Split(
        train=[d for i, d in enumerate(documents) if i not in held],
        val=[d for i, d in enumerate(documents) if i in held],
    )


def _split_by_position(doc: Document, val_fraction: float) -> tuple[list[Document], list[Document]]:
    """The last `val_fraction` of one document is held out, cut at a line break where there is one."""
    if doc.binary:
        raise InputError(f"{doc.name}: one MIDI file cannot be split for validation; give a folder of files")
    if doc.text is not None:
        cut = int(len(doc.text) * (1 - val_fraction))
        newline = doc.text.find("\n", cut)
        cut = newline + 1 if 0 <= newline < len(doc.text) - 1 else cut
        train, val = doc.text[:cut], doc.text[cut:]
        return [Document(f"{doc.name}[train]", text=train)], [Document(f"{doc.name}[val]", text=val)]
    size = os.path.getsize(doc.path)
    cut = int(size * (1 - val_fraction))
    with open(doc.path, "rb") as handle:
        handle.seek(cut)
        tail = handle.read(1 << 16)
    newline = tail.find(b"\n")
    if 0 <= newline and cut + newline + 1 < size:
        cut += newline + 1
    else:  # no line break near: step back to a character boundary (UTF-8 continuation bytes are 10xxxxxx)
        while 0 < cut and tail[:1] and (tail[0] & 0xC0) == 0x80:
            cut -= 1
            with open(doc.path, "rb") as handle:
                handle.seek(cut)
                tail = handle.read(1)
    train = Document(f"{doc.name}[train]", path=doc.path, start=0, end=cut, encoding=doc.encoding)
    val = Document(f"{doc.name}[val]", path=doc.path, start=cut, end=size, encoding=doc.encoding)
    return [train], [val]


# Built-in corpora: one TOML recipe each in the repository's corpora/ folder (package genseq.recipes).


def builtin_corpora() -> dict[str, dict]:
    """Recipes of the built-in corpora by name."""
    recipes = {}
    for entry in resources.files("genseq.recipes").iterdir():
        if entry.name.endswith(".toml"):
            recipes[entry.name.removesuffix(".toml")] = tomllib.loads(entry.read_text(encoding="utf-8"))
    return recipes


def builtin_documents(name: str) -> tuple[list[Document], dict]:
    """The documents of a built-in corpus and its recipe."""
    recipes = builtin_corpora()
    if name not in recipes:
        raise InputError(f"unknown corpus {name!r}; built-in corpora: {', '.join(sorted(recipes))}")
    recipe = recipes[name]
    builder = BUILDERS[recipe["source"]]
    return builder(recipe), recipe


def _music21_abc(recipe: dict) -> list[Document]:
    """Every tune of the named ABC collections that ship inside music21, one document each; with `fields` in the
    recipe, each tune cut down to its music (`abc_header.clean_tune`), and those it cannot clean left out and
    counted."""
    import music21

    fields = recipe.get("fields")
    if fields is not None and not set(REQUIRED_FIELDS) <= set(fields):
        raise InputError(f"a music21-abc recipe's fields {fields} must name "
                         f"{', '.join(REQUIRED_FIELDS)}, which every cleaned tune has")
    root = Path(music21.__file__).parent / "corpus"
    documents, skipped = [], {}
    for collection in recipe["collections"]:
        for path in sorted((root / collection).rglob("*.abc")):
            tunes = split_abc_tunes(path.read_text(encoding="utf-8", errors="replace"))
            if fields is not None:
                tunes, left_out = clean_tunes(tunes, fields)
                skipped.update({reason: skipped.get(reason, 0) + n for reason, n in left_out.items()})
            relative = path.relative_to(root)
            documents.extend(Document(name=f"{relative}#{i}", text=t) for i, t in enumerate(tunes))
    if skipped:
        from genseq.console import say

        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items(), key=lambda item: -item[1]))
        say(f"left out {sum(skipped.values())} tunes whose header cannot be made valid ({reasons}); "
            f"kept {len(documents):,}")
    return documents


def _music21_chorales(recipe: dict) -> list[Document]:
    """The composer's chorales in music21's corpus as MIDI files, rendered into the cache on first use only."""
    folder = cache_dir() / f"{recipe['composer']}-chorales"
    manifest = folder / "manifest.json"
    if not manifest.exists():
        _render_chorales(recipe, folder, manifest)
    files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
    return [Document(name=f"{folder.name}/{name}", path=str(folder / name), binary=True) for name in files]


def _render_chorales(recipe: dict, folder: Path, manifest: Path) -> None:
    """Write one .mid per chorale (atomically), then the manifest that marks the folder complete."""
    from music21 import corpus, midi

    from genseq.console import counting_bar, say

    preference = {suffix: rank for rank, suffix in enumerate(recipe["formats"])}
    chosen: dict[str, Path] = {}
    for path in sorted(corpus.getComposer(recipe["composer"]), key=lambda p: preference.get(p.suffix, len(preference))):
        if path.suffix in preference:
            chosen.setdefault(path.stem, path)
    folder.mkdir(parents=True, exist_ok=True)
    started, files, failed = time.monotonic(), [], []
    with counting_bar(f"rendering {len(chosen)} chorales to MIDI (once)", len(chosen)) as advance:
        for stem, path in sorted(chosen.items()):
            try:
                data = midi.translate.streamToMidiFile(corpus.parse(path)).writestr()
            except Exception:  # music21 raises many kinds of errors on scores it cannot render; count and go on
                failed.append(path.name)
            else:
                write_atomic(folder / f"{stem}.mid", data)
                files.append(f"{stem}.mid")
            advance(1)
    seconds = round(time.monotonic() - started, 1)
    write_atomic(manifest, json.dumps({"files": files, "failed": failed, "seconds": seconds}).encode())
    if failed:
        say(f"[yellow]music21 could not render {len(failed)} chorale(s)[/]: {', '.join(failed[:5])}")


def _packaged_file(recipe: dict) -> Path:
    return Path(str(resources.files("genseq.recipes").joinpath(recipe["file"])))


def _packaged_text(recipe: dict) -> list[Document]:
    """One text that ships gzipped beside its recipe (small in the wheel), as one document held in memory, so the
    validation split is its tail, cut at a line break like any single file."""
    path = _packaged_file(recipe)
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [Document(name=recipe["file"].removesuffix(".gz"), text=handle.read())]


BUILDERS = {"music21-abc": _music21_abc, "music21-chorales": _music21_chorales, "packaged-text": _packaged_text}
