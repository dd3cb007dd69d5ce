"""The HTML report: links only to files that exist, audio relative to the page, and without matplotlib."""

import re

import pytest

from genseq.output import audio, base, plots, report
from tests.helpers import TUNE


def test_html_report_links_only_files_that_exist(band, tmp_path):
    out = tmp_path / "report"
    roll = plots.piano_roll_png(band, out / "sample-01.png")
    sample = {"name": "sample-01", "text": TUNE, "piano_roll": roll, "wav": out / "missing.wav",
              "settings": {"seed": 3}}
    page = report.html_report([sample], out, {"temperature": 0.9, "checkpoint": "runs/x/best.pt"})
    text = page.read_text(encoding="utf-8")
    links = re.findall(r"(?:src|href)='([^']+)'", text)
    assert links == ["sample-01.png"]
    assert all((out / link).is_file() for link in links)
    assert "missing.wav" not in text and "Test jig" in text and "temperature" in text and "<audio" not in text


def test_html_report_plays_wav_relative_to_the_page(band, tmp_path):
    out = tmp_path / "report"
    wav = audio.midi_to_wav(band, out / "audio" / "s 1.wav", sample_rate=8000)
    text = report.html_report([{"name": "s", "wav": wav}], out, {}).read_text(encoding="utf-8")
    assert "<audio controls preload='none' src='audio/s%201.wav'>" in text


def test_a_report_without_matplotlib_keeps_audio_and_score_and_says_so_once(tmp_path, monkeypatch, capfd):
    from genseq.api import export
    from genseq.tokenizers.abc import AbcTokenizer

    def no_matplotlib(*args, **kwargs):
        raise base.missing_package("matplotlib", "plot")

    monkeypatch.setattr(plots, "piano_roll_png", no_matplotlib)
    tokenizer = AbcTokenizer(TUNE)
    result = export.export_samples([TUNE, TUNE], tokenizer, tmp_path, export.Outputs(report=True), {})
    assert result.missing == ["matplotlib is not installed; install it with: pip install 'genseq[plot]'"]
    assert all(entry["wav"].is_file() and entry["score"].is_file() for entry in result.files)
    assert "no piano roll: matplotlib is not installed" in result.report.read_text(encoding="utf-8")
    assert " ".join(capfd.readouterr().err.split()).count("pip install 'genseq[plot]'") == 1
    with pytest.raises(base.MissingPackage):  # asked for by name, it is an error
        export.export_samples([TUNE], tokenizer, tmp_path / "png", export.Outputs(png=True), {})
