"""Drawing a span of a kept result again in the studio (POST /api/infill): bars of a tune, characters of a text."""

import json

import pytest
from starlette.testclient import TestClient

from genseq.music.spans import bar_span
from genseq.serve import create_app
from genseq.serve.studio import REFILL_STOPPED
from tests.helpers import FOLK, LOCAL, assert_one_line_4xx, read_events, stream

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


def test_only_a_kept_result_of_text_is_drawn_again_and_never_by_a_path(client):
    for result in ("../../../etc/passwd", "/etc/passwd", ["x"], None, "20260101-000000-aaaaaa"):
        assert_one_line_4xx(client.post("/api/infill", json={"result": result, "span": "5-8"}),
                            "to draw again; pick one from the history")
    chorale = generated(client, "bach-chorales-small", 30, 1)
    assert_one_line_4xx(client.post("/api/infill", json={"result": chorale["id"], "span": "1-2"}),
                        f"sample 1 of result {chorale['id']} is not text")


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
