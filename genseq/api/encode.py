"""Files encoded with a tokenizer, and decoded again to check the round trip."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from genseq.api import export
from genseq.api.data import build_tokenizer, warn_skipped
from genseq.corpora.sources import find_documents, guess_tokenizer
from genseq.lm.data import check_some_read, encoded_documents
from genseq.lm.runtime import available_cores
from genseq.tokenizers import Tokenizer
from genseq.tokenizers.midi import MidiEncoding


@dataclass
class EncodedFile:
    name: str
    ids: list[int]
    roundtrip: Path | None = None
    """Where the decoded tokens were written (with `roundtrip_dir`)."""
    kept_notes: int | None = None
    """MIDI round trips: notes that came back within the tokenizer's `round_trip_tolerance`, of `notes`."""
    notes: int | None = None


@dataclass
class Encoding:
    tokenizer: Tokenizer
    files: list[EncodedFile]
    skipped: dict[str, str]
    """Files that could not be read, with the reason (skipped and counted, as training does)."""

    @property
    def notes(self) -> int | None:
        """Notes of every file, and those its round trip kept (MIDI round trips only, else None)."""
        return sum(f.notes for f in self.files) if self.files and self.files[0].notes is not None else None

    @property
    def kept_notes(self) -> int | None:
        return sum(f.kept_notes for f in self.files) if self.notes is not None else None


def encode_files(sources: Sequence[str], tokenizer: str | None = None, roundtrip_dir: str | Path | None = None,
                 force: bool = False) -> Encoding:
    """Token ids of each named file (a char tokenizer is fitted on the files themselves); files that cannot be
    read are skipped and counted. With `roundtrip_dir` the ids are decoded again into files named after their
    sources, and for MIDI the notes each round trip kept are counted."""
    kind = tokenizer or guess_tokenizer(sources[0])
    documents = [doc for source in sources for doc in find_documents(source, kind)]
    coder = build_tokenizer(kind, documents)
    files, skipped = [], []
    for doc, pieces in encoded_documents(documents, coder, available_cores()):
        if isinstance(pieces, str):
            skipped.append((doc.name, pieces))
        else:
            files.append(EncodedFile(doc.name, [int(i) for ids in pieces for i in ids]))
    check_some_read(len(files), skipped)
    warn_skipped(dict(skipped), len(documents))
    result = Encoding(coder, files, dict(skipped))
    if roundtrip_dir is not None:
        _round_trip(result, Path(roundtrip_dir), force)
    return result


def _round_trip(encoding: Encoding, folder: Path, force: bool) -> None:
    """Decode each file's ids into `folder` under the file's own name; count the notes MIDI round trips keep."""
    coder = encoding.tokenizer
    decoded = [coder.decode(f.ids) for f in encoding.files]
    written = export.export_samples(decoded, coder, folder, export.Outputs(), {}, force=force,
                                    stems=export.file_stems([f.name for f in encoding.files]))
    for file, document, entry in zip(encoding.files, decoded, written.files, strict=True):
        file.roundtrip = entry.get("text_file") or entry["midi"]
        if isinstance(coder, MidiEncoding):
            file.kept_notes, file.notes = coder.kept_notes(Path(file.name), document)
