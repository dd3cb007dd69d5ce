"""CUDA: training follows the CPU, mixed precision trains, checkpoints cross devices, sampling keeps its semantics.

Tests marked `cuda` (tests.helpers.CUDA) are skipped without a GPU; on a GPU machine `pytest -m cuda` runs them
(benchmarks/gpu.py does, in the one-call GPU check). The rest run everywhere: `--device cuda` where no GPU
is visible, and the GPU check itself in its smoke mode.
"""

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.cudagraph import GraphedStep
from genseq import api
from genseq.lm.config import ModelConfig, TrainConfig
from genseq.lm.fastpath import LSTMStep
from genseq.lm.training import Trainer, resume_payload
from tests.helpers import (
    DEVICES,
    NO_GPU,
    assert_one_line_error,
    assert_step_follows_model,
    needs_cuda,
    run_cli,
    trained_looking_model,
)

ROOT = Path(__file__).resolve().parents[1]
FIRST_STEP_TOLERANCE = 1e-5
"""nats: CPU and CUDA losses of the first step (the same weights and window), TF32 off: the order of additions."""
FP32_TOLERANCE = 1e-3
"""nats: over 8 fp32 steps with TF32 off, Adam's updates spread rounding differences (a near-zero gradient of
either sign moves a weight by the learning rate)."""
TF32_TOLERANCE = 2e-2
"""nats: the same with PyTorch's default, TF32 in cuDNN's LSTM (torch.backends.cudnn.allow_tf32): products
rounded to 10-bit mantissas. This is what `--precision fp32` trains with on a GPU."""


@pytest.fixture(scope="module")
def tokens(text_file) -> tuple[np.ndarray, np.ndarray, int]:
    text = text_file.read_text(encoding="utf-8")
    chars = sorted(set(text))
    ids = np.array([chars.index(c) for c in text], dtype=np.int32)
    cut = int(0.9 * len(ids))
    return ids[:cut], ids[cut:], len(chars)


def make_trainer(tokens, folder: Path, device: str, precision: str = "fp32", dropout: float = 0.0,
                 **options) -> Trainer:
    train_ids, val_ids, vocab = tokens
    model_config = ModelConfig(vocab_size=vocab, hidden_size=64, num_layers=2, dropout=dropout)
    config = TrainConfig(**{"steps": 1000, "batch_size": 16, "seq_len": 32, "device": device, "precision": precision,
                            "eval_tokens": 2048, "eval_every": 10**6, "seed": 0, "warmup_steps": 0, **options})
    return Trainer(model_config, config, train_ids, val_ids, folder, {})


@needs_cuda
@pytest.mark.parametrize("tf32, tolerance", [(False, FP32_TOLERANCE), (True, TF32_TOLERANCE)], ids=["fp32", "tf32"])
def test_fp32_steps_on_cuda_follow_the_cpu_loss(tf32, tolerance, tokens, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", tf32)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", tf32)
    losses = {}
    for device in ("cpu", "cuda"):
        trainer = make_trainer(tokens, tmp_path / device, device)
        losses[device] = np.array([trainer.train_step() for _ in range(8)])
    difference = np.abs(losses["cuda"] - losses["cpu"])
    assert np.isfinite(losses["cuda"]).all()
    if not tf32:
        assert difference[0] < FIRST_STEP_TOLERANCE, (losses, difference)
    assert difference.max() < tolerance, (losses, difference)


@needs_cuda
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_on_cuda_without_nan(precision, tokens, tmp_path):
    trainer = make_trainer(tokens, tmp_path, "cuda", precision, dropout=0.2, learning_rate=5e-3)
    losses = [trainer.train_step() for _ in range(60)]
    assert all(math.isfinite(loss) for loss in losses), losses
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 0.3, losses
    assert trainer.weights_are_finite() and math.isfinite(trainer.evaluate())
    assert trainer.scaler.is_enabled() == (precision == "fp16")  # bf16 has fp32's range: no loss scaling
    if precision == "fp16":
        assert 1.0 <= trainer.scaler.get_scale() < math.inf


@needs_cuda
def test_the_fp16_loss_scale_is_kept_across_a_resume(tokens, tmp_path):
    trainer = make_trainer(tokens, tmp_path, "cuda", "fp16", steps=20, eval_every=10)
    trainer.run()
    scale = trainer.scaler.get_scale()
    payload = resume_payload(tmp_path)
    assert payload["scaler"]["scale"] == scale
    resumed = Trainer(trainer.model.config, trainer.config, *tokens[:2], tmp_path, {}, resume_from=payload)
    assert resumed.scaler.get_scale() == scale  # not the initial 65536, whose first steps would all be skipped


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_a_bf16_runs_state_resumes_in_fp32(dropout, tokens, tmp_path):
    """A bf16 run (a GPU's default) checkpoints its hidden state in bf16; resumed where bf16 is not native
    (a CPU without it: fp32) that state is cast back, or the LSTM refuses it."""
    trainer = make_trainer(tokens, tmp_path, "cpu", dropout=dropout, steps=4, eval_every=2)
    trainer.run()
    payload = resume_payload(tmp_path)
    payload["hidden"] = [t.to(torch.bfloat16) for t in payload["hidden"]]
    config = TrainConfig(**{**vars(trainer.config), "steps": 6})
    resumed = Trainer(trainer.model.config, config, *tokens[:2], tmp_path, {}, resume_from=payload)
    assert [t.dtype for t in resumed.state] == [torch.float32] * 2
    assert math.isfinite(resumed.train_step())


def train_small(text_file, run: Path, **options) -> Path:
    api.train(str(text_file), name=str(run), progress=False, model={"hidden_size": 64, "num_layers": 2}, steps=60,
              eval_every=30, batch_size=16, seq_len=32, learning_rate=1e-2, **options)
    return run


@pytest.fixture(scope="module")
def cuda_run(tmp_path_factory, text_file) -> Path:
    """Trained with --device auto on a GPU machine: on CUDA, and resumable anywhere."""
    if not torch.cuda.is_available():
        pytest.skip(NO_GPU)
    return train_small(text_file, tmp_path_factory.mktemp("runs") / "cuda")


@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory, text_file) -> Path:
    return train_small(text_file, tmp_path_factory.mktemp("runs") / "cpu", device="cpu")


def greedy(model: api.TrainedModel) -> str:
    return model.sample("the ", length=100, temperature=0, precision="fp32", stop_at_end=False)[0]


@needs_cuda
def test_a_checkpoint_written_on_cuda_loads_and_samples_on_the_cpu(cuda_run, monkeypatch):
    assert json.loads((cuda_run / "config.json").read_text())["device"].startswith("cuda")
    model = api.load(cuda_run)
    assert model.network.head.weight.device.type == "cpu"
    on_cpu = greedy(model)
    samples = model.sample("the ", length=80, num_samples=3, seed=2, stop_at_end=False)
    assert len(set(samples)) == 3 and all(len(s) == 84 for s in samples)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    model.network.to("cuda")
    assert greedy(model)[:60] == on_cpu[:60]


@needs_cuda
def test_a_run_trained_on_cuda_resumes_on_the_cpu(cuda_run, tmp_path, monkeypatch):
    run = tmp_path / "copy"
    shutil.copytree(cuda_run, run)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # the resumed process sees no GPU
    result = run_cli("train", "--resume", str(run), "--steps", "70", "--quiet")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [30, 60, 70] and math.isfinite(records[-1]["val_loss"])


@needs_cuda
def test_a_checkpoint_written_on_the_cpu_samples_on_cuda(cpu_run, monkeypatch):
    assert json.loads((cpu_run / "config.json").read_text())["device"] == "cpu"
    model = api.load(cpu_run)
    on_cpu = greedy(model)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    model.network.to("cuda")
    assert greedy(model)[:60] == on_cpu[:60]
    samples = model.sample("the ", length=80, num_samples=3, seed=2, stop_at_end=False)
    assert len(set(samples)) == 3 and all(s.startswith("the ") and len(s) == 84 for s in samples)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("batch_size", [1, 5])
def test_graphed_step_gives_the_models_logits(device, batch_size, monkeypatch):
    """On CUDA the step replays a captured graph; on the CPU the same step runs eagerly."""
    if device == "cuda":
        monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    model = trained_looking_model(num_layers=3, embedding_size=20).to(device)
    with torch.no_grad():
        _, state = model(torch.randint(0, 30, (batch_size, 7), device=device))
    step = GraphedStep(model, batch_size)
    assert (step.graph is not None) == (device == "cuda")
    step.load_state(state)
    assert_step_follows_model(step, model, state, 30)


def test_device_cuda_where_no_gpu_is_visible_is_a_one_line_error(text_file, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # a machine without one, even where there is one
    result = run_cli("train", str(text_file), "--device", "cuda", "--steps", "1", "--quiet")
    assert_one_line_error(result, "--device cuda", "no CUDA GPU")


def test_the_cpu_fast_step_refuses_a_model_on_another_device():
    with pytest.raises(ValueError, match="runs on the CPU"):
        LSTMStep(trained_looking_model().to("meta"), 1)


def gpu_check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmarks.gpu", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_the_gpu_check_runs_to_the_end_in_smoke_mode(tmp_path, text_file):
    out = tmp_path / "out"
    result = gpu_check("--smoke", "--out", str(out), "--data", str(text_file))
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    parts = json.loads((out / "results.json").read_text())["parts"]
    assert {name: part["status"] for name, part in parts.items()} == dict.fromkeys(
        ["env", "cuda_tests", "train_speed", "sampling", "torchrun", "quality"], "ok")
    speed = parts["train_speed"]["result"]
    assert speed["1x32 plain fp32"]["x_plain_fp32"] == 1 and speed["1x32 genseq fp32"]["chars_per_s"] > 0
    if not torch.cuda.is_available():
        assert speed["1x32 genseq fp16"]["status"] == "unavailable"
    assert parts["sampling"]["result"]["genseq generate, 64"]["chars_per_s"] > 0
    torchrun = parts["torchrun"]["result"]
    assert torchrun["resume"]["steps_logged"][-1] == 8 and torchrun["nccl_group"]["ok"]
    quality = parts["quality"]["result"]
    assert quality["genseq"]["val_loss"] > 0 and quality["plain"]["val_loss"] > 0
    assert "== summary" in (out / "gpu.log").read_text()


def test_a_failing_part_of_the_gpu_check_is_logged_and_the_next_ones_run_within_the_budget(tmp_path, text_file):
    out = tmp_path / "out"
    result = gpu_check("--smoke", "--out", str(out), "--data", str(text_file), "--parts", "env,sampling,torchrun",
                       "--inject-failure", "env", "--budget", "6")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    parts = json.loads((out / "results.json").read_text())["parts"]
    assert parts["env"]["status"] == "failed" and "injected" in parts["env"]["error"]
    assert "Traceback" in (out / "gpu.log").read_text()
    assert parts["sampling"]["status"] == "ok"
    assert parts["torchrun"]["status"] == "skipped" and "budget" in parts["torchrun"]["reason"]
