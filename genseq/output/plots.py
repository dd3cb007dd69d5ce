"""Pictures of music and training: a MIDI piece's piano roll, a run's loss curve (matplotlib, the `plot` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genseq.errors import InputError
from genseq.files import atomic_file
from genseq.output.base import MidiSource, PathLike, load_midi, missing_package


def new_figure(width: float, height: float) -> Any:
    """A matplotlib figure drawn by Agg, without pyplot's global state."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise missing_package("matplotlib", "plot") from None
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def save_figure(figure: Any, path: PathLike) -> Path:
    """Write `figure` as a PNG, whole or not at all."""
    path = Path(path)
    with atomic_file(path, "image ") as handle:
        figure.savefig(handle, format="png")
    return path


def piano_roll_png(midi: MidiSource, png_path: PathLike) -> Path:
    """Notes as bars (pitch against seconds), one colour per instrument; drum hits drawn as crosses."""
    import pretty_midi

    score = load_midi(midi)
    figure = new_figure(12, 5)
    axes = figure.add_subplot()
    pitches = [n.pitch for i in score.instruments for n in i.notes] or [60]
    for index, instrument in enumerate(i for i in score.instruments if i.notes):
        colour = f"C{index % 10}"
        notes = instrument.notes
        if instrument.is_drum:
            axes.scatter([n.start for n in notes], [n.pitch for n in notes], marker="x", color=colour,
                         label=instrument.name or "drums")
            continue
        label = instrument.name or pretty_midi.program_to_instrument_name(instrument.program)
        axes.barh([n.pitch for n in notes], [n.end - n.start for n in notes], left=[n.start for n in notes],
                  height=0.8, color=colour, edgecolor="black", linewidth=0.3, label=label)
    low, high = min(pitches) - 2, max(pitches) + 2
    labelled = {0} if high - low > 24 else {0, 4, 7}  # C only on wide rolls; C, E and G on narrow ones
    ticks = [p for p in range(low, high + 1) if p % 12 in labelled] or [low]
    axes.set_yticks(ticks, [pretty_midi.note_number_to_name(p) for p in ticks])
    axes.set_ylim(low, high)
    axes.set_xlim(0, max(score.get_end_time(), 0.1))
    axes.set_xlabel("seconds")
    axes.set_ylabel("pitch")
    axes.grid(axis="y", alpha=0.3)
    if score.instruments:
        axes.legend(loc="upper right", fontsize="small")
    return save_figure(figure, png_path)


def loss_curve_png(metrics: list[dict[str, Any]], png_path: PathLike) -> Path:
    """Training and validation loss against step, from the run's metric records (events skipped)."""
    records = [r for r in metrics if "event" not in r and "step" in r]
    figure = new_figure(8, 4.5)
    axes = figure.add_subplot()
    drawn = False
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        points = [(r["step"], r[key]) for r in records if r.get(key) is not None]
        if points:
            steps, losses = zip(*points)
            axes.plot(steps, losses, marker="." if len(points) < 50 else None, label=label)
            drawn = True
    if not drawn:
        raise InputError("the metrics hold no train_loss or val_loss values; train for a few steps first")
    axes.set_xlabel("step")
    axes.set_ylabel("loss (nats/token)")
    axes.grid(alpha=0.3)
    axes.legend()
    return save_figure(figure, png_path)
