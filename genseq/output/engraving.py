"""Scores: ABC or MIDI engraved as MusicXML (music21) and as SVG (verovio), spelled in the piece's key."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from genseq.errors import GenseqError, InputError, one_line
from genseq.files import write_atomic
from genseq.music.abc import parse_abc
from genseq.music.score import MIDI_SUFFIXES
from genseq.output.base import MidiSource, PathLike, load_midi, missing_package


def _is_file(source: Any) -> bool:
    return isinstance(source, os.PathLike) or (isinstance(source, str) and "\n" not in source
                                               and Path(source).is_file())


def _music21_score(source: Any, title: str, own_title: bool = True) -> Any:
    """A music21 score of ABC text, an .abc file, a MIDI object or a .mid file, titled `title`; with `own_title`,
    only where the music has no title of its own (MIDI, a tune without `T:`; music21 would call it "Music21
    Fragment")."""
    from music21 import metadata, midi

    if _is_file(source):
        is_midi = Path(source).suffix.lower() in MIDI_SUFFIXES
        source = Path(source) if is_midi else Path(source).read_text(encoding="utf-8")
    if isinstance(source, str):
        score = parse_abc(source)
    else:
        buffer = io.BytesIO()
        load_midi(source).write(buffer)
        midi_file = midi.MidiFile()
        midi_file.readstr(buffer.getvalue())
        score = _engraved_in_key(midi.translate.midiFileToStream(midi_file))
    if score.metadata is None:
        score.insert(0, metadata.Metadata())
    if not (own_title and score.metadata.title):
        score.metadata.title = title
    return score


def _engraved_in_key(score: Any) -> Any:
    """MIDI carries pitches, not their spelling or key: music21 spells every black key alike (E-flat beside
    D-sharp) and gives each part a treble or bass clef. Here the piece's key (Krumhansl-Schmuckler) becomes
    the key signature, each note is spelled in it, and a tenor part gets the octave-treble clef."""
    from music21 import clef, key, pitch, scale

    if not score.recurse().notes:
        return score
    found = score.analyze("key")
    spelled = {p.pitchClass: p.name for p in found.pitches}
    if found.mode == "minor":  # the raised sixth and seventh degrees
        spelled.update({p.pitchClass: p.name for p in scale.MelodicMinorScale(found.tonic).getPitches()})
    lowered = {"major": 10, "minor": 1}.get(found.mode)  # the flat seventh (V of IV), the Neapolitan second
    for pc in set(range(12)) - set(spelled):  # a chromatic note is the degree below it raised, as a leading tone
        up = (pc - found.tonic.pitchClass) % 12 != lowered
        spelled[pc] = pitch.Pitch(spelled[(pc - 1 if up else pc + 1) % 12]).transpose("A1" if up else "-A1").name
    for part in score.parts:
        for old in list(part.recurse().getElementsByClass((clef.Clef, key.KeySignature))):  # listed: removed below
            old.activeSite.remove(old)
        first = part.getElementsByClass("Measure").first() or part
        first.insert(0, clef.bestClef(part, allowTreble8vb=True, recurse=True))
        first.insert(0, key.KeySignature(found.sharps))
        for note_pitch in part.recurse().stream().pitches:
            for other in (note_pitch, *note_pitch.getAllCommonEnharmonics()):
                if other.name == spelled[note_pitch.pitchClass]:
                    note_pitch.name, note_pitch.octave = other.name, other.octave
                    break
    return score


def _musicxml_bytes(source: Any, path: Path, title: str | None) -> bytes:
    """MusicXML of a score source, titled `title` or else its own title or the stem of `path`; a MusicXML file is
    passed through as it is."""
    if _is_file(source) and Path(source).suffix.lower() in {".xml", ".musicxml"}:
        return Path(source).read_bytes()
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    try:
        return GeneralObjectExporter(_music21_score(source, title or path.stem, own_title=title is None)).parse()
    except GenseqError:
        raise
    except Exception as err:  # durations MusicXML cannot express, and other music21 export failures
        raise InputError(f"music21 cannot write this music as MusicXML: {one_line(err)}") from None


def musicxml(source: str | MidiSource, path: PathLike, title: str | None = None) -> Path:
    """Write ABC text (or an .abc file) or MIDI as MusicXML, the format MuseScore and others open; `title`
    replaces the music's own (default: its own, else the file's stem)."""
    path = Path(path)
    write_atomic(path, _musicxml_bytes(source, path, title), "score ")
    return path


def score_svg(source: str | MidiSource, svg_path: PathLike, title: str | None = None) -> Path:
    """Engrave the first page of ABC text, an .abc file, MIDI or a MusicXML file as SVG with verovio.

    ABC goes to verovio as MusicXML written by music21: verovio's own ABC reader crashes the
    process on some malformed tunes, and music21 has checked the tune first. `title` replaces the music's own
    (default: its own, else the file's stem).
    """
    try:
        import verovio
    except ImportError:
        raise missing_package("verovio") from None
    verovio.enableLog(verovio.LOG_OFF)  # its warnings about open ties would clutter the console
    verovio.setDefaultResourcePath(str(Path(verovio.__file__).parent / "data"))  # set at import for that thread only
    toolkit = verovio.toolkit()
    toolkit.setOptions({"adjustPageHeight": True, "footer": "none", "scale": 50})
    path = Path(svg_path)
    if not toolkit.loadData(_musicxml_bytes(source, path, title).decode("utf-8")) or toolkit.getPageCount() < 1:
        raise InputError(f"verovio cannot engrave this music: {one_line(toolkit.getLog())}")
    write_atomic(path, toolkit.renderToSVG(1), "score ")
    return path
