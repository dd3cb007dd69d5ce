"""Fine-tuning (`genseq train DATA --from MODEL`): the base weights and tokenizer kept, new symbols grown,
the parent recorded, data of another kind refused."""

import json

import pytest
import torch

from genseq import api
from genseq.api.finetune import _kept_ids, prepare_finetune
from genseq.errors import CheckpointError, InputError
from genseq.lm.model import LSTMLanguageModel
from tests.helpers import assert_one_line_error, generated_text, run_cli

TINY = {"steps": 30, "eval_every": 10, "batch_size": 8, "seq_len": 32}


@pytest.fixture(scope="module")
def new_text(tmp_path_factory):
    """Another text, in which some characters the base model never saw recur."""
    path = tmp_path_factory.mktemp("novel") / "novel.txt"
    path.write_text(generated_text(20_000, seed=7).replace("e", "é").replace(" a", " ø"), encoding="utf-8")
    return path


def test_new_characters_get_rows_that_leave_the_known_probabilities_unchanged(trained_run, new_text):
    base = api.load(trained_run)
    tune = prepare_finetune(trained_run, str(new_text), None, None, "utf-8", None, TINY, progress=False)
    joined = tune.prepared.tokenizer
    assert set(base.tokenizer.chars) < set(joined.chars) and {"é", "ø"} <= set(joined.chars)
    model = LSTMLanguageModel(tune.model_config)
    model.load_state_dict(tune.weights)
    model.eval()
    base.network.eval()
    context = "the cat saw a dog and "
    with torch.no_grad():
        before = torch.softmax(base.network(torch.tensor([base.tokenizer.encode(context)]))[0][0, -1], -1)
        after = torch.softmax(model(torch.tensor([joined.encode(context)]))[0][0, -1], -1)
    kept = _kept_ids(base.tokenizer, joined)
    known = [i for i, old in enumerate(kept) if old is not None]
    assert torch.allclose(after[known], before[[kept[i] for i in known]], atol=1e-6, rtol=0)


def test_a_fine_tune_learns_the_new_text_and_records_its_parent(trained_run, new_text, tmp_path):
    result = api.train(str(new_text), start_from=str(trained_run), name=str(tmp_path / "tuned"), progress=False,
                       **TINY)
    losses = [r["val_loss"] for r in result.metrics]
    assert losses[-1] < losses[0]
    config = json.loads((result.run_dir / "config.json").read_text(encoding="utf-8"))
    assert config["parent"]["model"] == str(trained_run) and config["parent"]["added_symbols"] == 2
    assert config["plan"]["chosen_by"] == "base model" and config["train"]["patience"]
    assert api.load(result.run_dir).info()["parent"]["model"] == str(trained_run)
    assert api.find_runs(tmp_path).rows[0]["parent"] == str(trained_run)
    shown = run_cli("info", str(result.run_dir))
    assert f"fine-tuned   from {trained_run}" in shown.stdout
    assert f"(from {trained_run})" in run_cli("runs", str(tmp_path)).stdout
    resumed = api.train(resume=str(result.run_dir), steps=40, progress=False)  # resumes like any run, parent kept
    assert resumed.progress.step > result.progress.step or resumed.stopped_by == "no improvement"
    assert json.loads((result.run_dir / "config.json").read_text(encoding="utf-8"))["parent"] == config["parent"]
    assert api.load(result.run_dir / "last.pt").info()["parent"] == config["parent"]


def test_a_damaged_base_checkpoint_gets_the_refusal_sample_gives(tmp_path, text_file):
    damaged = tmp_path / "model.pt"
    damaged.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable genseq checkpoint"):
        api.train(str(text_file), start_from=str(damaged), name=str(tmp_path / "run"), progress=False, steps=1)


def test_midi_given_to_a_text_model_is_a_one_line_error_naming_both_kinds(trained_run, tmp_path):
    song = tmp_path / "song.mid"
    song.write_bytes(b"MThd")
    with pytest.raises(InputError, match="is MIDI data .* is a text model"):
        api.train(str(song), start_from=str(trained_run), name=str(tmp_path / "run"), progress=False, steps=1)
    result = run_cli("train", str(song), "--from", str(trained_run), "--steps", "1")
    assert_one_line_error(result, "MIDI data", "text model", "--from")


def test_folk_abc_small_fine_tunes_on_a_few_tunes_keeping_its_tokenizer(tmp_path):
    tunes = tmp_path / "tunes"
    tunes.mkdir()
    for n, meter in enumerate(("6/8", "5/8", "2/4")):
        (tunes / f"t{n}.abc").write_text(f"X:{n}\nT:Tune {n}\nM:{meter}\nL:1/8\nK:G\n"
                                         + "|:GAB cde|dBG AFD|GAB cde|dBG G3:|\n" * 4, encoding="utf-8")
    base = api.load("folk-abc-small")
    result = api.train(str(tunes), start_from="folk-abc-small", name=str(tmp_path / "run"), progress=False,
                       steps=2, eval_every=1, batch_size=2, seq_len=16, val_fraction=0.34)
    tuned = api.load(result.run_dir)
    assert set(base.tokenizer.chars) <= set(tuned.tokenizer.chars)
    assert set(base.tokenizer.meters) | {"5/8"} <= set(tuned.tokenizer.meters)
    assert tuned.config.hidden_size == base.config.hidden_size and tuned.config.num_layers == base.config.num_layers


def test_a_few_tunes_fine_tune_in_a_smaller_batch_rather_than_being_refused(tmp_path):
    tunes = tmp_path / "tunes"
    tunes.mkdir()
    for n in range(12):
        (tunes / f"t{n}.abc").write_text(f"X:{n}\nM:6/8\nL:1/8\nK:D\n|:DFA dAF|GBd gdB:|\n", encoding="utf-8")
    plan = api.plan(str(tunes), start_from="folk-abc-small", steps=2, progress=False)
    assert 1 <= plan.batch_size < 64 and plan.seq_len == 64
    result = api.train(str(tunes), start_from="folk-abc-small", name=str(tmp_path / "run"), progress=False, steps=2,
                       eval_every=1)
    assert result.progress.step == 2
