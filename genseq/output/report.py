"""The report page: one static HTML file (no server, no external assets) to hear and see samples."""

from __future__ import annotations

import html
import os
import urllib.parse
from pathlib import Path
from typing import Any

from genseq.files import write_atomic
from genseq.output.base import PathLike

_REPORT_CSS = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin: 0 0 .5em; }
section { border: 1px solid #ddd; border-radius: 6px; padding: 1em; margin: 1em 0; }
table { border-collapse: collapse; font-size: .9em; } td { padding: .1em .8em .1em 0; vertical-align: top; }
td:first-child { color: #666; } img { max-width: 100%; display: block; margin: .5em 0; }
pre { background: #f6f6f6; padding: .7em; overflow-x: auto; font-size: .85em; } .note { color: #a40; }
"""


def _settings_table(settings: dict[str, Any]) -> str:
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
                   for k, v in settings.items())
    return f"<table>{rows}</table>"


def _link(path: PathLike, out_dir: Path) -> str:
    """A relative URL from the report to `path`, so the folder opens from disk or moves as a whole."""
    relative = os.path.relpath(Path(path).resolve(), out_dir.resolve())
    return html.escape(urllib.parse.quote(Path(relative).as_posix()))


def _sample_section(sample: dict[str, Any], out_dir: Path) -> str:
    def present(key: str) -> bool:
        return sample.get(key) is not None and Path(sample[key]).is_file()

    parts = [f"<h2>{html.escape(str(sample.get('name', 'sample')))}</h2>"]
    if sample.get("note"):
        parts.append(f"<p class='note'>{html.escape(str(sample['note']))}</p>")
    if present("wav"):
        parts.append(f"<audio controls preload='none' src='{_link(sample['wav'], out_dir)}'></audio>")
    for key, alt in (("piano_roll", "piano roll"), ("score", "score")):
        if present(key):
            parts.append(f"<img src='{_link(sample[key], out_dir)}' alt='{alt}'>")
    downloads = [f"<a href='{_link(sample[k], out_dir)}'>{k}</a>" for k in ("midi", "musicxml", "text_file")
                 if present(k)]
    if downloads:
        parts.append("<p>" + " · ".join(downloads) + "</p>")
    if sample.get("text"):
        parts.append(f"<pre>{html.escape(str(sample['text']))}</pre>")
    if sample.get("settings"):
        parts.append(_settings_table(sample["settings"]))
    return "<section>" + "\n".join(parts) + "</section>"


def html_report(samples: list[dict[str, Any]], out_dir: PathLike, settings: dict[str, Any],
                title: str = "genseq samples", sections: list[str] | tuple[str, ...] = ()) -> Path:
    """Write `out_dir/index.html`: a static page (no server, no external assets) to hear and see samples.

    Each sample is a dict with optional keys `name`, `text`, `note`, `settings` (its own, shown
    under it) and file paths `wav`, `piano_roll`, `score`, `midi`, `musicxml`, `text_file`; only
    files that exist are linked, relative to the page. `sections` are HTML blocks (already escaped,
    such as the judge's table) shown above the samples.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    body = "\n".join(_sample_section(sample, out_dir) for sample in samples)
    page = (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_REPORT_CSS}</style></head><body>\n<h1>{html.escape(title)}</h1>\n"
            f"{_settings_table(settings)}\n{''.join(sections)}{body}\n</body></html>\n")
    path = out_dir / "index.html"
    write_atomic(path, page, "report ")
    return path
