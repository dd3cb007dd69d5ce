"""The training plan: shape chosen for the budget, schedule that scales with the run, precision per CPU."""

import json
import math

import pytest
import torch

from genseq import api
from genseq.errors import ConfigError
from genseq.lm import planning, probe
from genseq.lm.config import TrainConfig
from genseq.lm.training import Progress, learning_rate
from tests.helpers import assert_one_line_error, run_cli

CPU = torch.device("cpu")


def step_times(seconds_per_million_weights: float, overhead: float = 0.004):
    """Step times of a machine as a tests' stand-in for the probe: overhead plus a cost per weight and token."""
    calls = []

    def timer(shape: planning.Shape, precision: str) -> float:
        calls.append((shape, precision))
        work = shape.parameters(96) * shape.tokens_per_step / 1e6 / 4096
        return overhead + seconds_per_million_weights * work * (0.5 if precision == "bf16" else 1.0)

    timer.calls = calls
    return timer


def plan_for(minutes=None, steps=None, model=None, train=None, size="auto", timer=None, tokens=1_000_000):
    options = {k: v for k, v in {"minutes": minutes, "steps": steps, **(train or {})}.items() if v is not None}
    return planning.make_plan(vocab_size=96, train_tokens=tokens, model_options=model or {}, train_options=options,
                              size=size, device=CPU, step_seconds=timer or step_times(0.05))


@pytest.mark.parametrize("steps", [20, 300, 2_000, 50_000])
def test_warm_up_is_never_a_large_share_of_a_run(steps):
    config = TrainConfig(steps=steps)
    peak_reached = next(step for step in range(steps)
                        if learning_rate(config, Progress(step=step), step / steps) >= 0.95 * config.learning_rate)
    assert peak_reached <= max(1, 0.05 * steps) and peak_reached <= 100, peak_reached


def test_a_warm_up_given_in_steps_is_kept():
    warm, none = TrainConfig(steps=300, warmup_steps=200), TrainConfig(steps=300, warmup_steps=0)
    halfway = learning_rate(warm, Progress(step=99), 99 / 300) / learning_rate(none, Progress(step=99), 99 / 300)
    assert halfway == pytest.approx(0.5)


def test_the_same_probe_figures_give_the_same_shape():
    first, second = plan_for(minutes=10), plan_for(minutes=10)
    assert first.to_dict() == second.to_dict()
    assert first.chosen_by == "auto" and "candidate shapes" in first.reason


def test_a_slower_machine_or_a_shorter_budget_gets_a_smaller_model():
    fast = plan_for(minutes=10, timer=step_times(0.02))
    slow = plan_for(minutes=10, timer=step_times(0.4))
    short = plan_for(minutes=1, timer=step_times(0.02))
    assert slow.parameters < fast.parameters and short.parameters < fast.parameters
    assert fast.steps > 0 and slow.steps > 0


def test_auto_precision_takes_the_faster_native_one_and_the_probe_stays_short(cpu_view):
    timer = step_times(0.05)
    chosen = plan_for(minutes=3, timer=timer)
    if "bf16" in planning.precisions_to_try("auto", CPU):
        assert chosen.precision == "bf16"
    else:
        assert chosen.precision == "fp32" and {p for _, p in timer.calls} == {"fp32"}
    assert len(timer.calls) <= 2 * len(planning.CANDIDATES)


def test_explicit_settings_always_win():
    timer = step_times(0.05)
    chosen = plan_for(minutes=10, model={"num_layers": 3, "hidden_size": 64, "dropout": 0.15},
                      train={"seq_len": 32, "batch_size": 8}, timer=timer)
    assert (chosen.num_layers, chosen.hidden_size, chosen.seq_len, chosen.batch_size) == (3, 64, 32, 8)
    assert chosen.dropout == 0.15 and chosen.chosen_by == "given"
    assert chosen.locked_dropout and not plan_for(minutes=10, model={"locked_dropout": False}).locked_dropout
    preset = plan_for(minutes=10, size="tiny", timer=timer)
    assert (preset.num_layers, preset.hidden_size) == planning.SIZES["tiny"]
    with pytest.raises(ConfigError, match="unknown --size 'huge'"):
        plan_for(minutes=10, size="huge")


def test_a_budget_in_steps_needs_no_probe_and_stays_at_most_the_default_size():
    timer = step_times(0.05)
    chosen = plan_for(steps=300, timer=timer)
    assert timer.calls == []
    assert chosen.parameters <= planning.STEP_BUDGET_MAX.parameters(96) and chosen.steps == 300
    assert chosen.warmup_steps == 15 and chosen.eval_every == 30


def test_dropout_follows_the_epochs_a_run_reads():
    assert planning.dropout_for(0.5) == planning.dropout_for(1.0) == 0.0
    values = [planning.dropout_for(e) for e in (1.5, 3, 6, 15, 100)]
    assert values == sorted(values) and values[-1] == 0.3 and values[0] < 0.1
    # the 10-minute anchors: ~8 epochs took 0.2 over 0.3, ~15 epochs 0.3 over 0.2
    assert 0.15 < planning.dropout_for(8) < 0.25 < planning.dropout_for(15) <= 0.3
    short = plan_for(steps=300, model={"num_layers": 2, "hidden_size": 128}, train={"seq_len": 64, "batch_size": 32},
                     tokens=360_000)
    assert short.dropout < 0.1  # 614k tokens on 360k: under two epochs


def test_weight_decay_follows_the_epochs_a_run_reads_and_a_given_one_wins():
    assert planning.weight_decay_for(0.3) == planning.weight_decay_for(2.0) == planning.WEIGHT_DECAY_MIN
    values = [planning.weight_decay_for(e) for e in (2.5, 3, 4, 6, 15, 100)]
    assert values == sorted(values) and planning.WEIGHT_DECAY_MIN < values[0] < values[-1] == planning.WEIGHT_DECAY_MAX
    assert planning.weight_decay_for(8) == 0.3  # the 10-minute anchor
    many = plan_for(steps=3000, model={"num_layers": 2, "hidden_size": 128}, train={"seq_len": 64, "batch_size": 32},
                    tokens=360_000)  # 16 epochs
    assert many.weight_decay == planning.WEIGHT_DECAY_MAX and "weight decay 0.3" in many.describe()
    given = plan_for(steps=3000, model={"num_layers": 2, "hidden_size": 128},
                     train={"seq_len": 64, "batch_size": 32, "weight_decay": 0.05}, tokens=360_000)
    assert given.weight_decay == 0.05 and given.reason.endswith("; weight decay given")


def test_augmented_copies_are_planned_for_as_the_pieces_they_copy():
    """Twelve transpositions of 385k tokens get the dropout of 385k tokens read many times, not of 4.6M new ones."""
    def plan(copies: int) -> planning.Plan:
        return planning.make_plan(vocab_size=96, train_tokens=4_620_000, model_options={},
                                  train_options={"minutes": 15}, size="auto", device=CPU,
                                  step_seconds=step_times(0.05), copies=copies)
    plain, copied = plan(1), plan(12)
    assert copied.dropout > plain.dropout and copied.dropout == planning.dropout_for(copied.tokens / 385_000)
    assert (copied.num_layers, copied.hidden_size, copied.tokens) == (plain.num_layers, plain.hidden_size, plain.tokens)
    assert "12 augmented copies of 385,000" in copied.reason and "copies" not in plain.reason
    assert copied.epochs == pytest.approx(copied.tokens / 4_620_000, rel=1e-3)  # epochs: passes over the split


def test_plan_prints_the_choice_and_trains_nothing(text_file, tmp_path):
    result = run_cli("train", str(text_file), "--steps", "40", "--plan", "--name", "never", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("plan: ") and "LSTM" in result.stdout and len(result.stdout.splitlines()) == 1
    assert not (tmp_path / "checkpoints").exists()
    as_json = json.loads(run_cli("train", str(text_file), "--steps", "40", "--plan", "--json", "--hidden", "32",
                                 cwd=tmp_path).stdout)
    assert as_json["hidden_size"] == 32 and as_json["steps"] == 40


def test_the_run_records_its_plan(text_file, tmp_path):
    result = api.train(str(text_file), name=str(tmp_path / "run"), progress=False, steps=12,
                       model={"num_layers": 1, "hidden_size": 32}, seq_len=16, batch_size=8)
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["plan"]["hidden_size"] == 32 and config["plan"]["steps"] == 12
    assert config["train"]["warmup_steps"] == config["plan"]["warmup_steps"] == 1  # 5% of 12 steps, at least one
    assert config["train"]["eval_every"] == config["plan"]["eval_every"] == 2
    assert config["model"]["dropout"] == config["plan"]["dropout"]
    assert config["train"]["weight_decay"] == config["plan"]["weight_decay"]
    assert config["model"]["locked_dropout"] is config["plan"]["locked_dropout"] is True


@pytest.mark.parametrize("mask", ["ONEDNN_MAX_CPU_ISA=AVX2", "GENSEQ_NO_BF16=1"])
def test_bf16_where_the_cpu_lacks_it_is_a_one_line_error(text_file, tmp_path, mask, monkeypatch):
    """oneDNN limited to AVX2 refuses bf16 LSTMs as an AVX2-only CPU does, and genseq's own switch says the same;
    auto then trains in fp32, and sampling in int8 (fbgemm's kernel, native on AVX2) still runs."""
    monkeypatch.setenv(*mask.split("="))
    refused = run_cli("train", str(text_file), "--steps", "2", "--precision", "bf16", "--hidden", "16",
                      "--layers", "1", "--batch-size", "4", "--seq-len", "8", cwd=tmp_path)
    auto = run_cli("train", str(text_file), "--steps", "2", "--plan", "--json", "--hidden", "16", cwd=tmp_path)
    sampled = run_cli("sample", "folk-abc-small", "--length", "5", "--precision", "bf16", cwd=tmp_path)
    assert_one_line_error(refused, "--precision bf16", "no native bf16", "fp32")
    assert json.loads(auto.stdout)["precision"] == "fp32"
    assert_one_line_error(sampled, "--precision bf16", "no native bf16")


def test_evaluations_are_spread_evenly_over_the_budget(text_file, tmp_path):
    result = api.train(str(text_file), name=str(tmp_path / "run"), progress=False, steps=40,
                       model={"num_layers": 1, "hidden_size": 16}, seq_len=8, batch_size=4, eval_tokens=500)
    assert [r["step"] for r in result.metrics] == list(range(4, 41, 4))


def test_the_run_evaluates_on_the_plans_schedule(text_file, tmp_path):
    """65 steps: the plan evaluates every 7 (7, 14, ..., 63, then the last), not at each tenth of the budget."""
    result = api.train(str(text_file), name=str(tmp_path / "run"), progress=False, steps=65,
                       model={"num_layers": 1, "hidden_size": 16}, seq_len=8, batch_size=4, eval_tokens=500)
    plan = json.loads((result.run_dir / "config.json").read_text())["plan"]
    assert plan["eval_every"] == 7
    assert [r["step"] for r in result.metrics] == [*range(7, 64, 7), 65]


def test_the_run_warms_up_over_the_plans_warm_up_steps(text_file, tmp_path):
    """The warm-up the plan prints is the one the learning rate follows: step k of 60 (k from 1) runs at
    peak x min(1, k / warm-up) x the cosine at (k - 1) / 60, down to 5% of the peak."""
    result = api.train(str(text_file), name=str(tmp_path / "run"), progress=False, steps=60, eval_every=1,
                       model={"num_layers": 1, "hidden_size": 16}, seq_len=8, batch_size=4, eval_tokens=100)
    plan = json.loads((result.run_dir / "config.json").read_text())["plan"]
    assert plan["warmup_steps"] == 3 and f"warm-up {plan['warmup_steps']}," in api.plan(
        str(text_file), steps=60, model={"num_layers": 1, "hidden_size": 16}, seq_len=8, batch_size=4,
        progress=False).describe()
    peak = plan["learning_rate"]
    for record in result.metrics:
        k = record["step"]
        cosine = 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (k - 1) / 60))
        assert record["lr"] == pytest.approx(peak * min(1.0, k / 3) * cosine, rel=1e-9), k


def test_a_mistyped_training_option_is_one_line_naming_the_one_meant(text_file, tmp_path):
    with pytest.raises(ConfigError, match="^unknown training option 'minuts'; did you mean 'minutes'\\?$"):
        api.train(str(text_file), name=str(tmp_path / "run"), progress=False, minuts=1)
    with pytest.raises(ConfigError, match="^unknown model setting 'hiden_size'; did you mean 'hidden_size'\\?$"):
        api.plan(str(text_file), steps=5, model={"hiden_size": 16}, progress=False)
    assert not (tmp_path / "run").exists()


def test_the_probe_is_measured_once_per_machine_and_torch_version(tmp_path, monkeypatch):
    tiny = planning.Shape(1, 16, 8, 4)
    first = probe.StepProbe(CPU, 1, tmp_path)
    seconds = first(tiny, "fp32")
    assert 0 < seconds < 5
    (cached,) = (tmp_path / "probe").glob("*.json")
    assert json.loads(cached.read_text()) == {f"{tiny.key}/fp32": seconds}

    def no_timing(*args, **kwargs):
        raise AssertionError("timed again")

    monkeypatch.setattr(probe, "time_training_step", no_timing)
    assert probe.StepProbe(CPU, 1, tmp_path)(tiny, "fp32") == seconds
    assert probe.machine_key(CPU, 1) != probe.machine_key(CPU, 2)


def test_the_probe_keeps_the_median_of_at_least_three_timed_steps_after_an_untimed_one(monkeypatch):
    from genseq.lm.training import Trainer

    calls = []
    real_step = Trainer.train_step

    def counted(self):
        calls.append(1)
        return real_step(self)

    monkeypatch.setattr(Trainer, "train_step", counted)
    probe.time_training_step(planning.Shape(1, 16, 8, 4), "fp32", CPU, seconds=0.0)
    assert len(calls) == 4  # one untimed, then three timed even with no time left: one slow step cannot decide


def test_the_learning_rate_is_higher_for_narrow_models_and_short_runs():
    rate = planning.learning_rate_for
    assert rate(384, 10_000) == rate(384, 1_000) == 8e-3
    assert rate(128, 300) > rate(512, 300) > rate(512, 1_000) and rate(384, 4_000) > rate(512, 4_000)
    assert rate(32, 1) <= 2e-2
    given = plan_for(steps=300, train={"learning_rate": 1e-3})
    assert given.learning_rate == 1e-3 and plan_for(steps=300).learning_rate > 5e-3
