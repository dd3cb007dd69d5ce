"""Per-piece statistics of genseq's note representation, and MGEval's overlapping area between sets.

Features follow Yang & Lerch (2018, MGEval) and MusPy: each piece becomes one value or vector per
feature; a set is compared with the reference through the distances between pieces (Euclidean),
as the overlapping area of the kernel density estimates of intra-reference distances and
reference-to-sample distances.
"""

from __future__ import annotations

import numpy as np

from genseq.music.score import Score

STEPS_PER_BEAT = 12
"""Grid for groove and polyphony: sixteenths and eighth-note triplets both fall on it."""
NOTE_LENGTH_CLASSES = np.array([4, 2, 1, 1 / 2, 1 / 4, 3, 3 / 2, 3 / 4, 3 / 8, 4 / 3, 2 / 3, 1 / 3])
"""MGEval's 12 note-length classes in quarter notes: whole, half, quarter, 8th, 16th, their dotted
forms, and half, quarter and 8th triplets."""
_MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
_MINOR = np.array([0, 2, 3, 5, 7, 8, 10])
class Notes:
    """The pitched notes of a score in beats (quarter notes through its tempo map), with its bar lines."""

    def __init__(self, score: Score):
        notes = [(n.pitch, n.start, n.end) for track in score.tracks if not track.is_drum for n in track.notes]
        notes.sort(key=lambda n: (n[1], -n[0]))
        array = np.array(notes, dtype=np.float64).reshape(-1, 3)
        self.pitch = array[:, 0].astype(int)
        self.start = score.quarter_notes(array[:, 1])
        self.end = np.maximum(score.quarter_notes(array[:, 2]), self.start)
        self.bar_starts = _bar_starts(score, float(self.end.max()) if len(self.end) else 0.0)

    def __len__(self) -> int:
        return len(self.pitch)


def _bar_starts(score: Score, until: float) -> np.ndarray:
    """Where bars start, in beats, from the score's time signatures (4/4 without any)."""
    meters = score.time_signatures or ((0.0, 4, 4),)
    times = score.quarter_notes(np.array([m[0] for m in meters], dtype=np.float64))
    starts = []
    for index, (_, numerator, denominator) in enumerate(meters):
        length = numerator * 4 / denominator
        stop = times[index + 1] if index + 1 < len(meters) else until + length
        starts.extend(np.arange(times[index], stop, length) if length > 0 else [])
    return np.array(starts + [until + 1e-9], dtype=np.float64)


def pitch_class_histogram(notes: Notes) -> np.ndarray:
    weights = np.bincount(notes.pitch % 12, weights=notes.end - notes.start, minlength=12)
    return weights / weights.sum() if weights.sum() > 0 else np.full(12, 1 / 12)


def pitch_range(notes: Notes) -> float:
    return float(notes.pitch.max() - notes.pitch.min())


def pitch_count(notes: Notes) -> float:
    return float(len(np.unique(notes.pitch)))


def melody(notes: Notes) -> np.ndarray:
    """The highest pitch sounding at each onset: the tune itself for one voice, the top voice for several."""
    onsets = np.unique(notes.start)
    line = np.empty(len(onsets), dtype=int)
    for first in range(0, len(onsets), 256):  # in blocks, so a long piece needs no notes x onsets matrix at once
        times = onsets[first:first + 256, None]
        sounding = (notes.start[None, :] <= times) & ((notes.end[None, :] > times) | (notes.start[None, :] == times))
        line[first:first + 256] = np.where(sounding, notes.pitch[None, :], -1).max(1)
    return line


def mean_abs_interval(notes: Notes) -> float:
    line = melody(notes)
    return float(np.abs(np.diff(line)).mean()) if len(line) > 1 else 0.0


def pitch_class_entropy(notes: Notes) -> float:
    counts = np.bincount(notes.pitch % 12, minlength=12)
    shares = counts[counts > 0] / counts.sum()
    return float(-(shares * np.log2(shares)).sum())


def scale_consistency(notes: Notes) -> float:
    """The largest share of notes inside one major or minor scale (MusPy's definition)."""
    counts = np.bincount(notes.pitch % 12, minlength=12)
    best = max(counts[(scale + root) % 12].sum() for root in range(12) for scale in (_MAJOR, _MINOR))
    return float(best / counts.sum())


def note_length_histogram(notes: Notes) -> np.ndarray:
    lengths = np.maximum(notes.end - notes.start, 1e-6)
    nearest = np.abs(np.log2(lengths[:, None]) - np.log2(NOTE_LENGTH_CLASSES[None, :])).argmin(1)
    counts = np.bincount(nearest, minlength=len(NOTE_LENGTH_CLASSES))
    return counts / counts.sum()


def ioi_beats(notes: Notes) -> float:
    """Mean time between consecutive onsets, in beats."""
    onsets = np.unique(np.round(notes.start * STEPS_PER_BEAT)) / STEPS_PER_BEAT
    return float(np.diff(onsets).mean()) if len(onsets) > 1 else 0.0


def groove_consistency(notes: Notes) -> float:
    """1 - the mean Hamming distance between the onset patterns of consecutive bars, per grid step (MusPy)."""
    starts = notes.bar_starts
    bar = np.searchsorted(starts, notes.start + 1e-9, side="right") - 1
    steps = np.round((starts[1:] - starts[:-1]) * STEPS_PER_BEAT).astype(int)
    patterns = [np.zeros(max(s, 1), dtype=bool) for s in steps]
    for index, start in zip(bar, notes.start, strict=True):
        if 0 <= index < len(patterns):
            step = int(round((start - starts[index]) * STEPS_PER_BEAT))
            patterns[index][min(step, len(patterns[index]) - 1)] = True
    used = [p for p in patterns if p.any()]
    if len(used) < 2:
        return 1.0
    distances = []
    for first, second in zip(used[:-1], used[1:], strict=True):
        size = max(len(first), len(second))
        a, b = np.pad(first, (0, size - len(first))), np.pad(second, (0, size - len(second)))
        distances.append(np.count_nonzero(a != b) / size)
    return float(1 - np.mean(distances))


def polyphony(notes: Notes) -> float:
    """Mean number of pitches sounding, over the grid steps where at least one sounds (MusPy's definition:
    a unison of two voices is one pitch)."""
    first, last = np.round(notes.start * STEPS_PER_BEAT).astype(int), np.round(notes.end * STEPS_PER_BEAT).astype(int)
    roll = np.zeros((int(np.maximum(last, first + 1).max()), 128), dtype=bool)
    for start, end, pitch in zip(first, np.maximum(last, first + 1), notes.pitch, strict=True):
        roll[start:end, pitch] = True
    sounding = roll.sum(1)
    return float(sounding[sounding > 0].mean())


FEATURES = {
    "pitch_class_histogram": ("pitch-class histogram (duration-weighted)", pitch_class_histogram),
    "pitch_range": ("pitch range (semitones)", pitch_range),
    "pitch_count": ("pitch count (distinct pitches)", pitch_count),
    "mean_abs_interval": ("mean absolute interval (semitones)", mean_abs_interval),
    "pitch_class_entropy": ("pitch-class entropy (bits)", pitch_class_entropy),
    "scale_consistency": ("scale consistency (best of 24 keys)", scale_consistency),
    "note_length_histogram": ("note-length histogram (12 classes)", note_length_histogram),
    "ioi_beats": ("inter-onset interval (beats)", ioi_beats),
    "groove_consistency": ("groove consistency", groove_consistency),
    "polyphony": ("polyphony (notes sounding)", polyphony),
}
"""Feature name: (label, function of a piece's `Notes`)."""


def piece_features(notes: Notes, with_polyphony: bool) -> dict[str, np.ndarray]:
    """Every feature of one piece as a 1-D array (one value for the scalar ones); the piece has pitched notes."""
    return {name: np.atleast_1d(np.asarray(function(notes), dtype=np.float64))
            for name, (_, function) in FEATURES.items() if with_polyphony or name != "polyphony"}


def intra_distances(values: np.ndarray) -> np.ndarray:
    """Euclidean distances between every pair of rows of `values` [pieces, dims]."""
    differences = values[:, None, :] - values[None, :, :]
    distances = np.sqrt((differences ** 2).sum(-1))
    return distances[np.triu_indices(len(values), k=1)]


def cross_distances(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    return np.sqrt(((first[:, None, :] - second[None, :, :]) ** 2).sum(-1)).ravel()


def _density(values: np.ndarray, grid: np.ndarray, spread: float) -> np.ndarray:
    """A Gaussian KDE of `values` on `grid` with Scott's bandwidth (what scipy.stats.gaussian_kde does by
    default, in numpy so that genseq needs no scipy); a narrow bump where all values agree."""
    if len(values) > 1 and np.ptp(values) > 1e-12 * max(1.0, spread):
        width = float(np.std(values, ddof=1)) * len(values) ** -0.2  # Scott's rule in one dimension: n^(-1/5)
        if width > 0:
            return _mean_gaussian(values, grid, width)
    return _mean_gaussian(values, grid, 1e-3 * spread)


def _mean_gaussian(values: np.ndarray, grid: np.ndarray, width: float) -> np.ndarray:
    """The mean of normal densities of standard deviation `width` centred on `values`, at each grid point
    (in blocks of the grid, so 20,000 values need no values x grid matrix at once)."""
    density = np.empty(len(grid))
    for first in range(0, len(grid), 256):
        z = (grid[first:first + 256, None] - values[None, :]) / width
        density[first:first + 256] = np.exp(-0.5 * z * z).mean(1)
    return density / (width * np.sqrt(2 * np.pi))


MAX_DISTANCES = 20_000
"""Distances kept per density (a fixed random subset beyond): the KDE's cost grows with their number."""


def overlap_area(first: np.ndarray, second: np.ndarray, points: int = 2048) -> float:
    """Area under the smaller of the two densities, in [0, 1]: 1 when the distance distributions agree."""
    rng = np.random.default_rng(0)
    first, second = (d if len(d) <= MAX_DISTANCES else rng.choice(d, MAX_DISTANCES, replace=False)
                     for d in (first, second))
    low, high = min(first.min(), second.min()), max(first.max(), second.max())
    spread = max(high - low, 1e-6)
    grid = np.linspace(low - 0.25 * spread, high + 0.25 * spread, points)
    smaller = np.minimum(_density(first, grid, spread), _density(second, grid, spread))
    area = float(((smaller[1:] + smaller[:-1]) / 2 * np.diff(grid)).sum())  # the trapezoid rule
    return float(np.clip(area, 0.0, 1.0))
