"""Harmonising a melody: Bach's own soprano and a folk tune set by the shipped chorale model, checked note by note."""

from __future__ import annotations

from pathlib import Path

import music21
import pretty_midi
import pytest
import torch

from genseq import api
from genseq.errors import ConfigError, InputError
from genseq.judge.chorale import chorale_counts
from genseq.judge.features import Notes
from genseq.lm.sampling import Rules
from genseq.music.score import score_from_pretty_midi
from genseq.rules.harmonize import GivenVoice, melody_log_likelihood, melody_template
from genseq.tokenizers import VoicesTokenizer
from genseq.tokenizers.text import CharTokenizer
from tests.helpers import ROOT, assert_one_line_error, run_cli

VOICES = VoicesTokenizer()
FOLK_TUNE = ROOT / "tests" / "data" / "low-folk-tune.abc"
"""A tune the folk model shipped before 2026-12-02 wrote, an octave below a soprano's range (its lowest note is F3)."""


@pytest.fixture(scope="module")
def bach(tmp_path_factory) -> tuple[Path, Path]:
    """BWV 66.6 from music21's corpus as MIDI: the whole chorale, and its soprano alone."""
    folder = tmp_path_factory.mktemp("bwv66.6")
    chorale = music21.corpus.parse("bach/bwv66.6")
    chorale.write("midi", fp=str(folder / "chorale.mid"))
    chorale.parts[0].write("midi", fp=str(folder / "soprano.mid"))
    return folder / "chorale.mid", folder / "soprano.mid"


def given_positions(template: list[int | None], ids: list[int]) -> list[tuple[int, int]]:
    """(template token, token written) at every position the template gives."""
    return [(given, ids[i]) for i, given in enumerate(template) if given is not None and i < len(ids)]


def test_the_template_of_bachs_soprano_is_his_chorale_with_the_lower_voices_left_open(bach):
    chorale, soprano = bach
    template, shift = melody_template(VOICES, str(soprano))
    full = VOICES.encode(str(chorale))
    voice_tokens = {*VOICES.token_ids("PITCH"), *VOICES.token_ids("HOLD"), *VOICES.token_ids("REST")}
    assert shift == 0 and len(template) == len(full)
    assert all(given == bach_token for given, bach_token in given_positions(template, full))
    open_slots = sum(given is None for given in template)
    assert open_slots == 3 * sum(token in voice_tokens for token in full) // 4 > 400


def test_a_harmonisation_keeps_the_melody_note_for_note_and_writes_three_voices_under_it_by_the_rules(bach):
    _, soprano = bach
    model = api.load("bach-chorales-small")
    template, _ = melody_template(model.tokenizer, str(soprano))
    pieces = model.harmonize(str(soprano), num_samples=3, seed=1)
    assert [track.name for track in pieces[0].instruments] == ["Soprano", "Alto", "Tenor", "Bass"]
    melody = pretty_midi.PrettyMIDI(str(soprano)).instruments[0].notes
    for piece in pieces:
        ids = model.tokenizer.encode(piece)
        assert len(ids) == len(template)
        assert all(given == written for given, written in given_positions(template, ids))
        top = piece.instruments[0].notes
        assert [n.pitch for n in top] == [n.pitch for n in melody]  # at 120 bpm: the melody's beats, its pitches
        assert all(len(track.notes) > 20 for track in piece.instruments[1:])
        counts = chorale_counts(Notes(score_from_pretty_midi(piece)))
        assert (counts.parallels, counts.crossings) == (0, 0) and counts.four_voice_sonorities > 30
    lower = [tuple(n.pitch for track in piece.instruments[1:] for n in track.notes) for piece in pieces]
    assert len(set(lower)) == 3  # three seeds' worth of different harmonies under one melody
    again = model.harmonize(str(soprano), num_samples=3, seed=1)
    assert [model.tokenizer.encode(p) for p in again] == [model.tokenizer.encode(p) for p in pieces]


def test_each_setting_kept_is_the_candidate_under_which_the_melody_is_most_likely(bach):
    _, soprano = bach
    model = api.load("bach-chorales-small")
    template, _ = melody_template(model.tokenizer, str(soprano))
    drawn = [model.tokenizer.encode(p) for p in model.harmonize(str(soprano), num_samples=4, candidates=1, seed=2)]
    kept = [model.tokenizer.encode(p) for p in model.harmonize(str(soprano), num_samples=1, candidates=4, seed=2)]
    context = list(model.payload["prelude"])
    scores = melody_log_likelihood(model.network, context, template, drawn)
    assert len(set(scores.tolist())) == 4 and kept == [drawn[int(scores.argmax())]]
    with torch.no_grad():  # the same score read one step at a time, as the sampler reads
        logits, state = model.network(torch.tensor([context]))
        stepped = 0.0
        for given, token in zip(template, drawn[0], strict=True):
            if given is not None:
                stepped += torch.log_softmax(logits[0, -1], -1)[token].item()
            logits, state = model.network.step(torch.tensor([token]), state)
            logits = logits[:, None]
    assert stepped == pytest.approx(scores[0].item(), abs=1e-2)


def test_a_folk_tune_in_abc_is_moved_up_an_octave_into_the_sopranos_range_and_set():
    model = api.load("bach-chorales-small")
    text = FOLK_TUNE.read_text(encoding="utf-8")
    template, shift = melody_template(model.tokenizer, str(FOLK_TUNE))
    assert shift == 12 and melody_template(model.tokenizer, text) == (template, shift)
    piece = model.harmonize(str(FOLK_TUNE), seed=2)[0]
    tune = music21.converter.parse(text, format="abc")
    written = [p.midi for n in tune.flatten().notes for p in n.pitches]
    assert [n.pitch - 12 for n in piece.instruments[0].notes] == written[: len(piece.instruments[0].notes)]
    assert len(piece.instruments[0].notes) >= len(written) - 1  # a tied note may come back as one
    assert all(track.notes for track in piece.instruments)


def test_given_tokens_overrule_every_other_rule_and_open_slots_take_voice_tokens_only():
    bar, pitch = VOICES.token_ids("BAR").start, VOICES.token_ids("PITCH").start
    template = [bar, pitch + 70, None, None, None]

    class ForbidAll:
        def start(self, context, batch): pass
        def select(self, rows): pass
        def advance(self, tokens): pass
        def mask(self, logits): logits[:, pitch + 70] = float("-inf")

    rule = Rules(ForbidAll(), GivenVoice(VOICES, template))
    rule.start([], 2)
    for position, given in enumerate([*template, VOICES.end_of_document]):
        logits = torch.zeros(2, VOICES.vocab_size)
        rule.mask(logits)
        finite = torch.isfinite(logits[0]).nonzero().flatten().tolist()
        if given is None:
            assert set(finite) == set(VOICES.token_ids("PITCH")) - {pitch + 70} | {VOICES.token_ids("HOLD").start,
                                                                                VOICES.token_ids("REST").start}
        else:
            assert finite == [given], position
        rule.advance(torch.tensor([finite[0]] * 2))


def test_what_cannot_be_harmonised_is_a_one_line_error(bach, tmp_path):
    chorale, soprano = bach
    with pytest.raises(InputError, match="has 4 pitched tracks; a melody to harmonise is one track"):
        melody_template(VOICES, str(chorale))
    with pytest.raises(ConfigError, match="harmonised by a voices model"):
        melody_template(CharTokenizer("abc"), str(soprano))
    assert_one_line_error(run_cli("sample", "folk-abc-small", "--melody", str(soprano), "--output-dir",
                                  str(tmp_path / "a")), "harmonised by a voices model", "tokenizer is abc")
    assert_one_line_error(run_cli("sample", "bach-chorales-small", "--melody", str(soprano)), "--output-dir")
    assert_one_line_error(run_cli("sample", "bach-chorales-small", "--melody", str(soprano), "--primer-file",
                                  str(soprano), "--output-dir", str(tmp_path / "b")), "without a primer")
    assert_one_line_error(run_cli("sample", "bach-chorales-small", "--melody", str(tmp_path / "none.abc"),
                                  "--output-dir", str(tmp_path / "c")), "none.abc: no such melody file")


def test_the_cli_writes_harmonisations_as_four_track_midi_with_scores(bach, tmp_path):
    _, soprano = bach
    result = run_cli("sample", "bach-chorales-small", "--melody", str(soprano), "--num-samples", "2", "--seed", "4",
                     "--output-dir", str(tmp_path), "--score", "--quiet")
    assert result.returncode == 0, result.stderr
    for n in (1, 2):
        piece = pretty_midi.PrettyMIDI(str(tmp_path / f"sample-0{n}.mid"))
        assert [t.name for t in piece.instruments] == ["Soprano", "Alto", "Tenor", "Bass"]
        assert (tmp_path / f"sample-0{n}.svg").stat().st_size > 10_000
