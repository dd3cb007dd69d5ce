"""Drawing a span of a kept result again in the studio (POST /api/infill): bars of a tune, characters of a text,
beats of a chorale (shaded on its piano roll in seconds), seconds of other MIDI."""

import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from genseq import api
from genseq.music.spans import bar_span
from genseq.serve import create_app
from genseq.serve.studio import REFILL_STOPPED
from tests.helpers import FOLK, LOCAL, RAW, assert_one_line_4xx, band_with_tempo_changes, read_events, stream

ATTACKER = "http://attacker.example"


def generated(client, model: str = FOLK, length: int = 400, seed: int = 7) -> dict:
    """A result kept by the studio: with folk-abc-small and seed 7, a tune of 18 bars after a pickup."""
    return stream(client, {"model": model, "length": length, "seed": seed})[-1][1]


def refill(client, settings: dict) -> list[tuple[str, dict]]:
    with client.stream("POST", "/api/infill", json=settings) as response:
        assert response.status_code == 200, response.read()
        return read_events(response)


def test_bars_of_a_tune_are_drawn_again_streamed_and_the_rest_stays_note_for_note(client):
    original = generated(client)
    tune = original["samples"][0]["text"]
    events = refill(client, {"result": original["id"], "span": "5-8", "seed": 1, "candidates": 4})
    names = [name for name, _ in events]
    assert names[:2] == ["job", "started"] and names[-2:] == ["rendering", "result"] and "tokens" in names
    span = bar_span(tune, 5, 8)
    assert events[0][1]["primer"] == tune[:span.start]  # the live text starts with what comes before the span
    made = events[-1][1]
    assert made["infill"] == {"of": original["id"], "sample": 1, "root": original["id"], "unit": "bars", "first": 5,
                              "last": 8, "start": span.start, "end": span.end, "after": len(tune) - span.end}
    assert made["settings"]["span"] == "5-8" and made["settings"]["candidates"] == 4
    text = made["samples"][0]["text"]
    after = made["infill"]["after"]
    assert text != tune and text[:span.start] == tune[:span.start] and text[-after:] == tune[span.end:]
    assert set(made["samples"][0]["files"]) == {"abc", "mid", "wav", "svg", "musicxml"}
    shown = client.get(f"/api/results/{made['id']}").json()
    assert shown["versions"] == [original["id"], made["id"]]
    assert shown["samples"][0]["bars"] == [None, *range(1, 19)]  # the pickup, then bars 1 to 18
    assert client.get(f"/api/results/{original['id']}").json()["versions"] == [original["id"], made["id"]]


def test_a_refill_of_a_refill_is_the_third_version_of_the_same_piece(client):
    original = generated(client)
    first = refill(client, {"result": original["id"], "span": "5-8", "seed": 1})[-1][1]
    second = refill(client, {"result": first["id"], "span": "1-2", "seed": 2})[-1][1]
    assert second["infill"]["of"] == first["id"] and second["infill"]["root"] == original["id"]
    versions = client.get(f"/api/results/{second['id']}").json()["versions"]
    assert versions == [original["id"], first["id"], second["id"]]
    history = {r["id"]: r for r in client.get("/api/history").json()["results"]}
    assert history[second["id"]]["infill"]["first"] == 1 and "infill" not in history[original["id"]]


def test_characters_of_a_text_are_drawn_again_the_rest_kept_character_for_character(client):
    original = generated(client, "shakespeare-small", 200, 3)
    text = original["samples"][0]["text"]
    made = refill(client, {"result": original["id"], "span": "50-80", "seed": 1})[-1][1]
    new = made["samples"][0]["text"]
    assert made["infill"]["unit"] == "chars" and (made["infill"]["start"], made["infill"]["end"]) == (49, 80)
    assert len(new) == len(text) and new[:49] == text[:49] and new[80:] == text[80:] and new != text
    assert "bars" not in client.get(f"/api/results/{made['id']}").json()["samples"][0]


def test_a_stopped_refill_keeps_nothing_and_says_so(client):
    """A span is drawn whole or not at all: a fill cut short would leave the piece with a hole or a half bar."""
    original = generated(client, "shakespeare-small", 200, 3)

    def stop_once_started(name, data):
        if name == "job":
            stop_once_started.job = data["id"]
        if name == "started":
            client.post(f"/api/jobs/{stop_once_started.job}/stop", json={})

    with client.stream("POST", "/api/infill", json={"result": original["id"], "span": "2-120", "seed": 1}) as response:
        events = read_events(response, on_event=stop_once_started)
    assert events[-1] == ("error", {"error": REFILL_STOPPED})
    assert [r["id"] for r in client.get("/api/history").json()["results"]] == [original["id"]]


@pytest.mark.parametrize(("settings", "fragment"), [
    ({"span": "20-30"}, "--bars 20-30 lies outside the tune, which has 18 bars besides its pickups"),
    ({"span": "6-5"}, "--bars 6-5 is empty"),
    ({"span": "1-18"}, "--bars 1-18 is the whole tune"),
    ({"span": "0-2"}, "bars count from 1 (a pickup is bar 0"),
    ({"span": "five"}, "--bars 'five' is not a span; write e.g. --bars 5-8"),
    ({"span": ""}, "name the span to draw again, e.g. 5-8"),
    ({"span": ["5-8"]}, "name the span to draw again"),
    ({"span": "5" * 41}, "name the span to draw again"),
    ({"span": "5-8", "candidates": 0}, "candidates must lie in 1..32, got 0"),
    ({"span": "5-8", "candidates": 10**6}, "candidates must lie in 1..32"),
    ({"span": "5-8", "sample": 2}, "has no sample 2"),
    ({"span": "5-8", "temperature": -1}, "--temperature must be a number >= 0"),
    ({"span": "5-8", "num_samples": 17}, "number of samples must lie in 1..16"),
    ({"span": "5-8", "seed": -1}, "--seed must lie in 0..2**64-1"),
])
def test_a_bad_span_or_setting_is_a_one_line_400_and_the_studio_goes_on(client, settings, fragment):
    original = generated(client)
    assert_one_line_4xx(client.post("/api/infill", json={"result": original["id"], **settings}), fragment)
    assert client.app.state.studio.running is None and not client.app.state.studio.waiting
    assert [r["id"] for r in client.get("/api/history").json()["results"]] == [original["id"]]


def test_after_a_refused_span_the_next_one_is_drawn(client):
    original = generated(client)
    assert_one_line_4xx(client.post("/api/infill", json={"result": original["id"], "span": "40"}), "lies outside")
    assert refill(client, {"result": original["id"], "span": "5"})[-1][0] == "result"


def test_only_a_kept_result_is_drawn_again_and_never_by_a_path(client):
    for result in ("../../../etc/passwd", "/etc/passwd", ["x"], None, "20260101-000000-aaaaaa"):
        assert_one_line_4xx(client.post("/api/infill", json={"result": result, "span": "5-8"}),
                            "to draw again; pick one from the history")


def test_a_refill_is_refused_while_a_training_runs(client, monkeypatch):
    original = generated(client)
    reason = "a training is running (studio-x, about 2 min left); one heavy job runs at a time"
    monkeypatch.setattr(client.app.state.trainings, "busy", lambda: reason)
    assert_one_line_4xx(client.post("/api/infill", json={"result": original["id"], "span": "5-8"}), reason,
                        status=409)
    assert client.app.state.studio.waiting == []


def test_another_sites_request_or_an_oversized_body_refills_nothing(client):
    original = generated(client)
    settings = json.dumps({"result": original["id"], "span": "5-8"})
    assert_one_line_4xx(client.post("/api/infill", content=settings,
                                    headers={"Content-Type": "text/plain", "Origin": ATTACKER}),
                        "a request from another site (http://attacker.example) may not change", status=403)
    assert_one_line_4xx(client.post("/api/infill", content=settings, headers={"Content-Type": "text/plain"}),
                        "a POST to /api/infill sends application/json, not text/plain", status=415)
    assert_one_line_4xx(client.post("/api/infill", json={"result": original["id"], "span": "5-8"},
                                    headers={"Sec-Fetch-Site": "cross-site"}), status=403)
    padded = {"result": original["id"], "span": "5-8", "pad": "x" * 300_000}
    assert_one_line_4xx(client.post("/api/infill", json=padded), "the request is over the 256 KiB limit", status=413)
    assert_one_line_4xx(client.post("/api/infill", content=b'{"result": "x", "seed": 1e400}',
                                    headers={"Content-Type": "application/json"}), "JSON numbers must be finite")
    assert len(client.get("/api/history").json()["results"]) == 1


def test_a_planted_record_with_a_bad_refill_link_is_skipped(runs):
    kept = runs / "studio" / "results" / "20260101-000000-eeeeee"
    kept.mkdir(parents=True)
    record = {"id": kept.name, "settings": {}, "infill": {"of": ["x"], "root": None},
              "samples": [{"name": "x", "files": {"txt": "sample-01.txt"}, "notes": []}]}
    (kept / "result.json").write_text(json.dumps(record))
    with TestClient(create_app(runs), base_url=LOCAL) as client:
        history = client.get("/api/history").json()
        assert history["results"] == [] and history["skipped"] == 1
        assert_one_line_4xx(client.get(f"/api/results/{kept.name}"), status=404)


# MIDI pieces: beats of a chorale, chosen on its piano roll (or typed), shaded there in seconds


def by_voice(notes: list[list[float]]) -> list[set[tuple[float, float, float]]]:
    """A result's notes ([pitch, start, end, track, drum]) as (pitch, start, end) per track (a chorale's voice)."""
    voices: list[set] = [set() for _ in range(4)]
    for pitch, start, end, track, _ in notes:
        voices[int(track)].add((pitch, start, end))
    return voices


def assert_rest_unchanged(original: list, version: list, start: float, end: float, drawn=(0, 1, 2, 3)) -> None:
    """Outside `start`-`end` seconds, every note keeps its pitch, onset and end (a note over a join is cut there, the
    part outside kept); a kept voice keeps every note."""
    for voice, (before, after) in enumerate(zip(by_voice(original), by_voice(version), strict=True)):
        if voice not in drawn:
            assert after == before, f"kept voice {voice} changed"
            continue
        outside = {(p, a, b) if b <= start or a >= end else (p, a, start) if a < start else (p, end, b)
                   for p, a, b in before if not (start <= a and b <= end)}
        assert outside <= after, f"voice {voice} lost {sorted(outside - after)[:3]}"
        assert all(start <= a and b <= end for _, a, b in after - outside)


@pytest.fixture
def chorale(client) -> dict:
    """A chorale kept by the studio: with bach-chorales-small, 600 tokens and seed 1, 40 beats at 120 bpm."""
    return generated(client, "bach-chorales-small", 600, 1)


def test_beats_of_a_chorale_are_drawn_again_shaded_in_seconds_and_the_rest_stays_note_for_note(client, chorale):
    shown = client.get(f"/api/results/{chorale['id']}").json()["samples"][0]
    assert shown["beats"][:4] == [0.0, 0.5, 1.0, 1.5]  # when each beat starts, for the piano roll to snap to
    events = refill(client, {"result": chorale["id"], "span": "9-16", "seed": 1, "candidates": 4})
    names = [name for name, _ in events]
    assert names[:2] == ["job", "started"] and names[-2:] == ["rendering", "result"] and "tokens" in names
    made = events[-1][1]
    assert made["infill"] == {"of": chorale["id"], "sample": 1, "root": chorale["id"], "unit": "beats", "first": 9,
                              "last": 16, "seconds": [4.0, 8.0]}
    assert made["settings"]["span"] == "9-16" and made["settings"]["candidates"] == 4
    assert set(made["samples"][0]["files"]) == {"mid", "wav", "svg", "musicxml"}
    before, after = chorale["samples"][0]["notes"], made["samples"][0]["notes"]
    assert by_voice(after) != by_voice(before)
    assert_rest_unchanged(before, after, 4.0, 8.0)
    assert client.get(f"/api/results/{made['id']}").json()["versions"] == [chorale["id"], made["id"]]


def test_voices_named_are_drawn_again_and_the_others_kept_note_for_note(client, chorale):
    made = refill(client, {"result": chorale["id"], "span": "5-12", "voices": "alto,tenor", "seed": 2,
                           "candidates": 4})[-1][1]
    assert made["infill"]["voices"] == "alto,tenor" and made["settings"]["voices"] == "alto,tenor"
    assert_rest_unchanged(chorale["samples"][0]["notes"], made["samples"][0]["notes"], 2.0, 6.0, drawn=(1, 2))
    again = refill(client, {"result": made["id"], "span": "1-4", "voices": "S", "seed": 3})[-1][1]
    assert again["infill"]["root"] == chorale["id"] and again["infill"]["seconds"] == [0.0, 2.0]
    assert client.get(f"/api/results/{again['id']}").json()["versions"] == [chorale["id"], made["id"], again["id"]]


@pytest.mark.parametrize(("settings", "fragment"), [
    ({"span": "38-44"}, "--beats 38-44 lies outside the piece, which has 40 beats (counted from 1)"),
    ({"span": "16-9"}, "--beats 16-9 is empty"),
    ({"span": "1-40"}, "--beats 1-40 is the whole piece"),
    ({"span": "0-4"}, "--beats 0-4 lies outside the piece"),
    ({"span": "9.5-16"}, "--beats '9.5-16' is not a span"),
    ({"span": "9-16", "voices": "alto,viola"}, "'viola' is not a voice of this model; name some of soprano, alto"),
    ({"span": "9-16", "voices": ["alto"]}, "name the voices to draw again as text, e.g. alto,tenor"),
    ({"span": "9-16", "voices": "a" * 41}, "name the voices to draw again as text"),
    ({"span": "9-16", "candidates": 33}, "candidates must lie in 1..32, got 33"),
])
def test_a_bad_span_of_beats_or_voices_is_a_one_line_400(client, chorale, settings, fragment):
    assert_one_line_4xx(client.post("/api/infill", json={"result": chorale["id"], **settings}), fragment)
    assert client.app.state.studio.running is None and not client.app.state.studio.waiting
    assert [r["id"] for r in client.get("/api/history").json()["results"]] == [chorale["id"]]


def test_voices_are_for_chorales_only(client):
    original = generated(client)
    assert_one_line_4xx(client.post("/api/infill", json={"result": original["id"], "span": "5-8", "voices": "alto"}),
                        "--voices names voices of a chorale; this abc model has none")


def test_a_planted_refill_of_midi_must_say_where_it_sounds(runs):
    kept = runs / "studio" / "results"
    for name, refill_record in [("20260101-000000-aaaaaa", {"unit": "beats", "first": 9, "last": 16}),
                                ("20260101-000000-bbbbbb", {"unit": "beats", "first": 9, "last": 16,
                                                            "seconds": [4.0, "8"]}),
                                ("20260101-000000-cccccc", {"unit": "seconds", "first": 1.5, "last": 2.0,
                                                            "seconds": [1.5, 2.0], "voices": 4}),
                                ("20260101-000000-dddddd", {"unit": "beats", "first": 9, "last": 16,
                                                            "seconds": [4.0, 8.0]})]:
        (kept / name).mkdir(parents=True)
        record = {"id": name, "settings": {}, "infill": {"of": "x", "root": "x", "sample": 1, **refill_record},
                  "samples": [{"name": "x", "files": {"mid": "sample-01.mid"}, "notes": []}]}
        (kept / name / "result.json").write_text(json.dumps(record))
    with TestClient(create_app(runs), base_url=LOCAL) as client:
        history = client.get("/api/history").json()
        assert [r["id"] for r in history["results"]] == ["20260101-000000-dddddd"] and history["skipped"] == 3


# MIDI pieces of other kinds: seconds, chosen on the piano roll


@pytest.fixture(scope="module")
def beat_runs(tmp_path_factory) -> Path:
    """A runs folder holding a tiny beat (bar grid) model, trained for a few seconds on band files."""
    folder = tmp_path_factory.mktemp("bands")
    for seed in range(8):
        (folder / f"band{seed}.mid").write_bytes(band_with_tempo_changes(seed))
    runs = tmp_path_factory.mktemp("runs")
    api.train(str(folder), tokenizer="beat", name=str(runs / "tiny-beat"), progress=False,
              model={"hidden_size": 32, "num_layers": 1}, steps=20, eval_every=10, batch_size=4, seq_len=32,
              learning_rate=1e-2, threads=1)
    return runs


@pytest.fixture(scope="module")
def beat_client(beat_runs):
    with TestClient(create_app(beat_runs), base_url=LOCAL) as client:
        yield client


@pytest.fixture(scope="module")
def band_piece(beat_client) -> dict:
    """A piece kept by the studio: the tiny beat model continuing a band file (8.4 s with seed 1)."""
    upload = beat_client.post("/api/primer?model=run:tiny-beat&name=band.mid", content=band_with_tempo_changes(3),
                              headers=RAW).json()["upload"]
    return stream(beat_client, {"model": "run:tiny-beat", "length": 100, "seed": 1, "upload": upload})[-1][1]


def test_seconds_of_a_beat_model_piece_are_drawn_again_on_its_grid_and_the_rest_stays_note_for_note(beat_client,
                                                                                                   band_piece):
    assert beat_client.get("/api/models").json()["infill"] == {"abc": "bars", "char": "chars", "voices": "beats",
                                                               "midi": "seconds", "beat": "seconds"}
    assert "beats" not in beat_client.get(f"/api/results/{band_piece['id']}").json()["samples"][0]
    events = refill(beat_client, {"result": band_piece["id"], "span": "2.5-4.25", "seed": 1, "candidates": 4})
    assert [name for name, _ in events][-2:] == ["rendering", "result"]
    made = events[-1][1]
    record = made["infill"]
    assert (record["unit"], record["first"], record["last"]) == ("seconds", 2.5, 4.25)
    start, end = record["seconds"]  # where the fill lies, on the model's grid
    assert abs(start - 2.5) < 0.2 and abs(end - 4.25) < 0.2 and made["settings"]["span"] == "2.5-4.25"
    before, after = band_piece["samples"][0]["notes"], made["samples"][0]["notes"]

    def near(note, notes):
        return any(n[0] == note[0] and abs(n[1] - note[1]) < 0.01 and abs(n[2] - note[2]) < 0.01 for n in notes)

    kept = [note for note in before if not start - 0.05 <= note[1] <= end + 0.05]
    assert kept and all(near(note, after) for note in kept)  # every note starting outside the span, as it was
    drawn = [note for note in after if not near(note, before)]
    assert all(start - 0.01 <= note[1] and note[2] <= end + 0.01 for note in drawn)  # the new notes, inside it
    assert beat_client.get(f"/api/results/{made['id']}").json()["versions"] == [band_piece["id"], made["id"]]


@pytest.mark.parametrize(("settings", "fragment"), [
    ({"span": "0-100"}, "--seconds 0-100 lies outside the piece, which lasts 8.4 s"),
    ({"span": "3-1"}, "--seconds 3-1 is empty"),
    ({"span": "5"}, "--seconds '5' is not a span of time; write e.g. --seconds 12-20"),
    ({"span": "2-4", "voices": "alto"}, "--voices names voices of a chorale; this beat model has none"),
])
def test_a_bad_span_of_seconds_is_a_one_line_400(beat_client, band_piece, settings, fragment):
    assert_one_line_4xx(beat_client.post("/api/infill", json={"result": band_piece["id"], **settings}), fragment)
    assert beat_client.app.state.studio.running is None and not beat_client.app.state.studio.waiting
