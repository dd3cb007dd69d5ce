"""Plots: piano-roll and loss-curve PNGs."""

import struct
from pathlib import Path

import pytest

from genseq.errors import InputError
from genseq.output import plots


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_piano_roll_is_a_png_of_sensible_size(band, tmp_path):
    width, height = png_size(plots.piano_roll_png(band, tmp_path / "roll.png"))
    assert 600 <= width <= 2000 and 300 <= height <= 1200


def test_loss_curve_skips_events_and_missing_values(tmp_path):
    metrics = [{"event": "start"}] + [
        {"step": step, "train_loss": 3.0 / step, "val_loss": 3.2 / step if step % 100 == 0 else None}
        for step in range(10, 510, 10)
    ]
    width, height = png_size(plots.loss_curve_png(metrics, tmp_path / "loss.png"))
    assert width >= 400 and height >= 200


def test_loss_curve_without_losses_is_an_input_error(tmp_path):
    with pytest.raises(InputError):
        plots.loss_curve_png([{"event": "start"}, {"step": 1, "train_loss": None}], tmp_path / "loss.png")
