"""Engraving: SVG scores from ABC, MusicXML from MIDI and music21, titles."""

from collections import Counter
from pathlib import Path

import pytest

from genseq.corpora.sources import split_abc_tunes
from genseq.output import engraving
from tests.helpers import TUNE


def test_score_svg_engraves_abc_text(tmp_path):
    pytest.importorskip("verovio")  # the [score] extra
    svg = engraving.score_svg(TUNE, tmp_path / "tune.svg").read_text(encoding="utf-8")
    assert "<svg" in svg and len(svg) > 5000


def test_score_svg_engraves_in_a_worker_thread(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:  # verovio's font path is set per thread; the studio engraves off the main one
        svg = pool.submit(engraving.score_svg, TUNE, tmp_path / "tune.svg").result()
    assert svg.read_text(encoding="utf-8").startswith("<svg")


def test_score_svg_reads_musicxml_from_music21_corpus(tmp_path):
    pytest.importorskip("verovio")
    import music21
    book = Path(music21.__file__).parent / "corpus" / "airdsAirs" / "book1.abc"
    first_tune = split_abc_tunes(book.read_text(encoding="utf-8"))[0]
    xml = engraving.musicxml(first_tune, tmp_path / "aird.musicxml")
    assert "<score-partwise" in xml.read_text(encoding="utf-8")
    assert "<svg" in engraving.score_svg(xml, tmp_path / "aird.svg").read_text(encoding="utf-8")


def test_musicxml_from_midi_has_the_notes(band, tmp_path):
    band.instruments.pop()  # drums do not notate as pitches
    xml = engraving.musicxml(band, tmp_path / "band.musicxml").read_text(encoding="utf-8")
    assert "<score-partwise" in xml and xml.count("<note") >= 8


def chorale_through_midi(number: str, path: Path) -> tuple[object, Path]:
    """A Bach chorale from music21's corpus and the same chorale as a .mid file, which keeps only its pitches."""
    from music21 import corpus

    chorale = corpus.parse(f"bach/bwv{number}")
    chorale.write("midi", fp=path)
    return chorale, path


@pytest.mark.parametrize("number", ["40.8", "26.6"])  # F minor (four flats, E naturals); A minor (G-sharps)
def test_a_score_from_midi_is_written_in_the_music_s_key_with_a_tenor_clef(number, tmp_path):
    from music21 import converter

    chorale, midi_file = chorale_through_midi(number, tmp_path / "chorale.mid")
    engraved = converter.parse(engraving.musicxml(str(midi_file), tmp_path / "chorale.musicxml"))
    signature = engraved.parts[0].recurse().getElementsByClass("KeySignature").first()
    assert signature.sharps == chorale.analyze("key").sharps
    original = Counter(p.nameWithOctave for p in chorale.recurse().stream().pitches)
    written = Counter(p.nameWithOctave for p in engraved.recurse().stream().pitches)
    assert written == original  # every note spelled as Bach spelled it
    clefs = [part.recurse().getElementsByClass("Clef").first().sign + str(part.recurse().getElementsByClass(
        "Clef").first().octaveChange) for part in engraved.parts]
    assert clefs == ["G0", "G0", "G-1", "F0"]  # soprano, alto, tenor an octave down, bass


def test_music_without_a_title_is_named_after_its_file(band, tmp_path):
    band.instruments.pop()
    untitled = "X:1\nM:6/8\nL:1/8\nK:G\n|:GAB c2d|e3 d3:|\n"
    for source, name in ((band, "band"), (untitled, "tune"), (TUNE, "jig")):
        xml = engraving.musicxml(source, tmp_path / f"{name}.musicxml").read_text(encoding="utf-8")
        assert "Music21 Fragment" not in xml
        assert (">Test jig<" if name == "jig" else f">{name}<") in xml  # a tune's own T: wins


def test_a_sampled_tune_is_titled_by_its_number_not_by_what_the_model_wrote(tmp_path):
    from genseq.api import export
    from genseq.tokenizers.abc import AbcTokenizer

    written = TUNE.replace("Test jig", "Ab Scag?, ES DAR")  # a title as a model writes one
    result = export.export_samples([TUNE, written], AbcTokenizer(written + TUNE), tmp_path, export.Outputs(score=True),
                                   {})
    for number, entry in enumerate(result.files, 1):
        xml = entry["musicxml"].read_text(encoding="utf-8")
        assert f">genseq tune {number}<" in xml and "Test jig" not in xml and "Scag" not in xml
        assert f"genseq tune {number}" in entry["score"].read_text(encoding="utf-8")


def test_a_midi_file_given_by_its_path_as_text_engraves_as_midi(band, tmp_path):
    band.instruments.pop()
    band.write(str(tmp_path / "band.mid"))
    xml = engraving.musicxml(str(tmp_path / "band.mid"), tmp_path / "band.musicxml").read_text(encoding="utf-8")
    assert xml.count("<note") >= 8
