"""A judgement as a terminal table, an HTML section for the report page, and overlaid histograms."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from genseq.corpora.sources import Document
from genseq.errors import GenseqError
from genseq.judge.core import Figure, Judgement, judge

COLUMNS = ("samples", "reference", "ceiling")
REPORT_REFERENCE = 200
"""Reference pieces the report page measures (a random subset): enough for its figures, ~10 s of ABC parsing."""
CEILING_NOTE = ("ceiling: two random halves of the reference, one judged against the other (OA rows: their "
                "overlapping area; other rows: one half's figure); OA is 1 where the sets' distances agree")


def _cell(figure: Figure, value: float | None) -> str:
    if value is None:
        return "-"
    if figure.kind == "share":
        return f"{100 * value:.1f}%"
    if figure.kind == "oa":
        return f"{value:.3f}"
    return f"{value:,.0f}" if value >= 100 or value == int(value) else f"{value:.4f}"


def table(judgement: Judgement) -> str:
    """One row per figure: label, samples, reference, ceiling."""
    rows = [("figure", *COLUMNS)] + [(f.label, *(_cell(f, getattr(f, c)) for c in COLUMNS))
                                     for f in judgement.figures]
    width = max(len(r[0]) for r in rows)
    lines = [f"{r[0]:<{width}}  " + "  ".join(f"{cell:>9}" for cell in r[1:]) for r in rows]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:], "", CEILING_NOTE])


def html_section(judgement: Judgement, title: str = "judge") -> str:
    """The table as an HTML section (escaped), for `render.html_report`."""
    head = "".join(f"<th>{c}</th>" for c in ("figure", *COLUMNS))
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in
                                    (f.label, *(_cell(f, getattr(f, c)) for c in COLUMNS))) + "</tr>"
                   for f in judgement.figures)
    return (f"<section><h2>{html.escape(title)}</h2><table><tr>{head}</tr>{body}</table>"
            f"<p>{html.escape(CEILING_NOTE)}</p></section>")


def report_section(samples: Sequence[Document], reference: str, progress: bool = False) -> str:
    """The judge's table for the report page, or a note saying why there is none (the page never fails for it).
    `progress` shows bars while pieces are read (a built-in reference's once: then they are cached)."""
    try:
        result = judge(samples, reference, max_reference=REPORT_REFERENCE, progress=progress)
    except GenseqError as err:
        return f"<section><h2>judge</h2><p class='note'>not judged: {html.escape(str(err))}</p></section>"
    return html_section(result, f"judge: {len(samples)} samples against {reference} "
                                f"({result['pieces'].reference:.0f} pieces measured)")


def histogram_pngs(judgement: Judgement, folder: str | Path) -> list[Path]:
    """One PNG per OA feature: intra-reference distances and reference-to-sample distances, overlaid."""
    from genseq.output.plots import new_figure, save_figure

    written = []
    for name, sets in judgement.distances.items():
        figure = new_figure(7, 4)
        axes = figure.add_subplot()
        values = [v for v in sets.values() if v is not None and len(v)]
        if not values:
            continue
        bins = np.linspace(min(v.min() for v in values), max(v.max() for v in values) + 1e-9, 40)
        for label, distances in sets.items():
            if distances is not None and len(distances):
                axes.hist(distances, bins=bins, density=True, alpha=0.5, label=label)
        axes.set_title(f"{judgement[name].label}: {_cell(judgement[name], judgement[name].samples)}")
        axes.set_xlabel("distance between pieces")
        axes.set_ylabel("density")
        axes.legend()
        written.append(save_figure(figure, Path(folder) / f"{name}.png"))
    return written
