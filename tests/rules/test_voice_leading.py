"""The part-writing rules a voices model samples under: masked by hand-made cases, then counted by the judge."""

from __future__ import annotations

import pretty_midi
import pytest
import torch

from genseq import api
from genseq.errors import ConfigError
from genseq.judge.chorale import ChoraleCounts, chorale_counts
from genseq.judge.features import Notes
from genseq.lm.sampling import generate
from genseq.music.score import score_from_pretty_midi
from genseq.rules.voice_leading import VoiceLeading
from genseq.tokenizers import VoicesTokenizer
from genseq.tokenizers.text import CharTokenizer
from tests.helpers import assert_one_line_error, run_cli

VOICES = VoicesTokenizer()
PITCH = VOICES.token_ids("PITCH").start
HOLD, REST, BAR = VOICES.token_ids("HOLD").start, VOICES.token_ids("REST").start, VOICES.token_ids("BAR").start
CHORD = [PITCH + 67, PITCH + 60, PITCH + 55, PITCH + 48]
"""G4 C4 G3 C3: soprano and alto a fifth apart, soprano and tenor an octave, soprano and bass a twelfth."""


def allowed_pitches(rule: VoiceLeading) -> set[int]:
    logits = torch.zeros(1, VOICES.vocab_size)
    rule.mask(logits)
    return {p for p in range(128) if torch.isfinite(logits[0, PITCH + p])}


def test_a_voice_may_not_follow_a_moving_voice_above_in_fifths_or_octaves_nor_cross_it_nor_leave_its_range():
    rule = VoiceLeading(VOICES)
    rule.start([BAR, *CHORD, PITCH + 69], 1)  # the soprano steps up to A4
    alto = allowed_pitches(rule)
    assert 62 not in alto  # C4 -> D4 under G4 -> A4: parallel fifths
    assert {61, 63, 57, 60} <= alto  # other intervals, contrary motion (C4 -> A3 is an octave), or staying
    assert max(alto) == 69 and min(alto) == 55  # never above the soprano, never below the alto's range
    rule.advance(torch.tensor([HOLD]))
    tenor = allowed_pitches(rule)
    assert 57 not in tenor and {56, 58, 50} <= tenor  # G3 -> A3 doubles the soprano's octave moving up with it
    rule.advance(torch.tensor([PITCH + 57]))  # drawn anyway (the rule only masks): the bass is checked against it
    bass = allowed_pitches(rule)
    assert 50 not in bass  # C3 -> D3: fifths with the soprano and with the tenor
    assert {45, 49, 51} <= bass  # C3 -> A2 moves against both; the others are no fifths
    assert min(bass) == 38 and max(bass) == 57  # the bass's range, and the tenor's A3 above


def test_a_voice_may_not_hold_a_note_that_a_voice_above_has_moved_below():
    rule = VoiceLeading(VOICES)
    rule.start([BAR, *CHORD, PITCH + 59], 1)  # the soprano falls to B3, under the alto's C4
    logits = torch.zeros(1, VOICES.vocab_size)
    rule.mask(logits)
    assert torch.isinf(logits[0, HOLD]) and torch.isfinite(logits[0, REST]) and max(allowed_pitches(rule)) == 59


def test_bar_meter_and_end_tokens_wait_for_a_frame_to_be_complete():
    rule = VoiceLeading(VOICES)
    rule.start([BAR, *CHORD, PITCH + 69], 2)
    logits = torch.zeros(2, VOICES.vocab_size)
    rule.mask(logits)
    between = [BAR, *VOICES.token_ids("METER"), VOICES.end_of_document]
    assert torch.isinf(logits[:, between]).all() and torch.isfinite(logits[:, [HOLD, REST]]).all()
    rule.advance(torch.tensor([HOLD, REST]))
    rule.advance(torch.tensor([HOLD, REST]))
    rule.advance(torch.tensor([HOLD, REST]))
    logits = torch.zeros(2, VOICES.vocab_size)
    rule.mask(logits)
    assert torch.isfinite(logits[:, between]).all()


def test_the_rule_is_for_voices_models_only():
    with pytest.raises(ConfigError, match="voices models; this is a char model"):
        VoiceLeading(CharTokenizer("abc"))


def judged(samples: list[pretty_midi.PrettyMIDI]) -> ChoraleCounts:
    total = ChoraleCounts()
    for sample in samples:
        total = total.add(chorale_counts(Notes(score_from_pretty_midi(sample))))
    return total


def test_the_shipped_chorale_model_writes_no_fault_the_judge_counts_under_the_rule_and_some_without():
    model = api.load("bach-chorales-small")
    assert model.sample_defaults.get("voice_leading") is True
    options = dict(num_samples=6, seed=3, temperature=1.2, length=800)
    free = judged(model.sample(voice_leading=False, **options))
    ruled = judged(model.sample(**options))
    assert free.parallels + free.crossings + free.out_of_range > 0 and ruled.notes > 100
    assert (ruled.parallels, ruled.crossings, ruled.out_of_range) == (0, 0, 0)


class Recorder:
    """A rule that forbids HOLD and keeps the tokens each sample was given, in the sampler's row order."""

    def start(self, context, batch):
        self.context, self.rows = list(context), [[] for _ in range(batch)]

    def select(self, rows):
        self.rows = [list(self.rows[row]) for row in rows.tolist()]

    def advance(self, tokens):
        for row, token in zip(self.rows, tokens.tolist(), strict=True):
            row.append(token)

    def mask(self, logits):
        logits[:, HOLD] = float("-inf")


@pytest.mark.parametrize("options", [dict(num_samples=3, seed=1), dict(beam_size=3, num_samples=3)])
def test_sampling_and_beam_search_feed_a_rule_every_token_of_every_sample_and_draw_only_what_it_allows(options):
    model = api.load("bach-chorales-small")
    config = model.sample_config(length=60, stop_at_end=False, voice_leading=False, **options)
    prelude, primer = model.payload.get("prelude", ()), [BAR, *CHORD]
    free = generate(model.network, primer, config, VOICES.end_of_document, prelude=prelude)
    rule = Recorder()
    ruled = generate(model.network, primer, config, VOICES.end_of_document, prelude=prelude, rule=rule)
    assert rule.context == [*(prelude or [VOICES.end_of_document]), *primer]
    assert any(HOLD in ids for ids in free) and not any(HOLD in ids for ids in ruled)
    assert rule.rows == ruled and all(len(ids) == 60 for ids in ruled)


def test_the_cli_samples_under_the_rule_by_default_frees_the_voices_on_request_and_refuses_other_models(tmp_path):
    counts = {}
    for flag in ("--voice-leading", "--free-voices"):
        folder = tmp_path / flag.strip("-")
        result = run_cli("sample", "bach-chorales-small", flag, "--num-samples", "4", "--seed", "3", "--temperature",
                         "1.2", "--length", "800", "--output-dir", str(folder), "--quiet")
        assert result.returncode == 0, result.stderr
        counts[flag] = judged([pretty_midi.PrettyMIDI(str(path)) for path in sorted(folder.glob("*.mid"))])
    assert counts["--free-voices"].parallels + counts["--free-voices"].out_of_range > 0
    assert (counts["--voice-leading"].parallels, counts["--voice-leading"].out_of_range) == (0, 0)
    assert_one_line_error(run_cli("sample", "folk-abc-small", "--voice-leading", "--length", "10"),
                          "--voice-leading keeps four-part writing rules for voices models; this is a abc model")
