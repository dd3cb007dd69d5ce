"""Folk-tune controls: the header as a primer, and transposition of written ABC and MIDI."""

import re

import pretty_midi
import pytest

from genseq import api
from genseq.errors import InputError
from genseq.music.abc import abc_to_midi
from genseq.music.bars import all_bars_full, read_tune
from genseq.music.controls import folk_primer, transpose_abc, transpose_midi, transpose_samples
from genseq.tokenizers.abc import AbcTokenizer
from genseq.tokenizers.text import CharTokenizer
from tests.helpers import assert_one_line_error, run_cli

TUNE = 'X:1\nT:Glen\nM:4/4\nL:1/8\nK:G\n"G"GABc ^cedB|"D7"d2 f2 "Allegro"g2 G,2|]\n'
ABC = AbcTokenizer(set("X:1\nM/68LKDmixEAGbC|#" + "abcdefg ABCDEFG0123456789"))


def pitches(text):
    """The tune's notes as music21 plays them (chord symbols left out: music21 would sound them too)."""
    return [n.pitch for n in abc_to_midi(re.sub(r'"[^"]*"', "", text)).instruments[0].notes]


def test_folk_primer_writes_the_header_in_the_training_tunes_order():
    assert folk_primer(ABC, meter="6/8", key="Dmix", unit_length="1/8") == "X:1\nM:6/8\nL:1/8\nK:Dmix\n"
    assert folk_primer(ABC, meter="C|") == "X:1\nM:C|\n"


@pytest.mark.parametrize("options, named", [
    ({"meter": "6/8x"}, "--meter '6/8x' is not an ABC meter"),
    ({"key": "H"}, "--key 'H' is not an ABC key"),
    ({"key": "Dfoo"}, "--key 'Dfoo'"),
    ({"unit_length": "3/8"}, "--unit-length '3/8'"),
    ({"key": "F#m"}, None),
])
def test_a_value_that_is_not_abc_or_not_in_the_vocabulary_is_named(options, named):
    if named is None:
        assert folk_primer(ABC, **options).endswith("K:F#m\n")
        without_sharp = AbcTokenizer(set(ABC.chars) - {"#"})
        with pytest.raises(InputError, match=r"--key 'F#m': this model's vocabulary cannot write '#'"):
            folk_primer(without_sharp, **options)
        return
    with pytest.raises(InputError, match=named.replace("(", r"\(")):
        folk_primer(ABC, **options)


def test_folk_primer_refuses_a_model_that_does_not_write_abc():
    with pytest.raises(InputError, match="this is a char model"):
        folk_primer(CharTokenizer("abc"), meter="6/8")


def test_transposing_moves_key_notes_accidentals_and_chord_symbols():
    moved = transpose_abc(TUNE, 2)
    assert moved == 'X:1\nT:Glen\nM:4/4\nL:1/8\nK:A\n"A"ABcd ^dfec|"E7"e2 g2 "Allegro"a2 A,2|]\n'
    assert pitches(moved) == [p + 2 for p in pitches(TUNE)]


@pytest.mark.parametrize("semitones", [-7, -2, -1, 1, 3, 6, 12])
def test_every_note_sounds_the_interval_higher_and_the_bars_keep_their_lengths(semitones):
    tune = "X:1\nM:3/4\nL:1/8\nK:Dmix\nDEF=F ^FG|A2 _B2 =B2|[K:Em]E^D=DE F2|c'2 C,2 z2|]\n"
    moved = transpose_abc(tune, semitones)
    assert pitches(moved) == [p + semitones for p in pitches(tune)]
    assert all_bars_full(read_tune(moved)) and all_bars_full(read_tune(tune))


def test_modes_and_keys_get_the_spelling_with_fewest_accidentals():
    assert "K:Cmix" in transpose_abc("X:1\nK:Dmix\nD|", -2)
    assert "K:Fm" in transpose_abc("X:1\nK:Em\nE|", 1)
    assert "K: Bb" in transpose_abc("X:1\nK: G\nG|", 3)
    assert transpose_abc(TUNE, 0) == TUNE


def test_transposing_midi_moves_pitched_notes_and_keeps_drums():
    midi = pretty_midi.PrettyMIDI()
    piano, drums = pretty_midi.Instrument(0), pretty_midi.Instrument(0, is_drum=True)
    piano.notes = [pretty_midi.Note(90, 60, 0, 1), pretty_midi.Note(90, 126, 1, 2)]
    drums.notes = [pretty_midi.Note(90, 36, 0, 1)]
    midi.instruments = [piano, drums]
    moved = transpose_midi(midi, 3)
    assert [n.pitch for n in moved.instruments[0].notes] == [63]  # 129 would leave MIDI's range: dropped
    assert [n.pitch for n in moved.instruments[1].notes] == [36] and midi.instruments[0].notes[0].pitch == 60


def test_text_models_cannot_be_transposed():
    with pytest.raises(InputError, match="--transpose moves music"):
        transpose_samples(CharTokenizer("abc"), ["abc"], 2)


@pytest.mark.slow
def test_sample_command_primes_the_header_and_transposes_what_it_writes(tmp_path):
    out = run_cli("sample", "folk-abc-small", "--meter", "6/8", "--key", "Dmix", "--unit-length", "1/8",
                  "--transpose", "2", "--length", "60", "--seed", "3", "--output-dir", str(tmp_path / "out"),
                  "--quiet")
    assert out.returncode == 0, out.stderr
    text = (tmp_path / "out" / "sample-01.abc").read_text()
    assert text.startswith("X:1\nM:6/8\nL:1/8\nK:Emix\n")


@pytest.mark.slow
def test_sample_command_names_a_bad_control_on_one_line():
    assert_one_line_error(run_cli("sample", "folk-abc-small", "--meter", "6/8x"), "--meter '6/8x'")
    assert_one_line_error(run_cli("sample", "folk-abc-small", "--key", "D", "--primer", "X:1\n"), "--key")


def test_a_checkpoint_sampling_default_is_used_unless_a_call_names_its_own_distribution():
    model = api.load("folk-abc-small")
    model.payload["sample_defaults"] = {"temperature": 0.8, "top_p": 0.9}
    config = model.sample_config(temperature=None, top_k=None, seed=3)
    assert (config.temperature, config.top_p, config.seed) == (0.8, 0.9, 3)
    plain = model.sample_config(temperature=1.0)  # naming one of temperature/top-k/top-p drops all three defaults
    assert (plain.temperature, plain.top_p) == (1.0, None)
    model.payload.pop("sample_defaults")
    assert model.sample_config().temperature is None and model.sample_config().effective_temperature == 1.0
