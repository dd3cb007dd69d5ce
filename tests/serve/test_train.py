"""The studio's Train tab over HTTP: uploads and their limits, hostile zips, refusals, a training streamed, stopped."""

import io
import json
import time
import zipfile
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from genseq.serve import create_app, training
from tests.helpers import FOLK, LOCAL, RAW, TUNES, assert_one_line_4xx, read_events

ATTACKER = "http://attacker.example"


def send(client, name: str, data: bytes, upload: str | None = None):
    """A file posted as the page posts it: the raw bytes, named in the query."""
    query = f"name={name}" + (f"&upload={upload}" if upload else "")
    return client.post(f"/api/train/files?{query}", content=data, headers=RAW)


def zipped(entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def data_files(client, upload: str) -> list[Path]:
    return sorted(client.app.state.trainings.uploads[upload].data.iterdir())


def test_files_a_folder_and_a_zip_add_up_and_unusable_files_are_skipped_and_counted(client):
    first = send(client, "jigs.abc", TUNES.encode()).json()
    assert (first["files"], first["kinds"], first["skipped"]) == (1, {"abc": 1}, 0)
    upload = first["upload"]
    assert send(client, "reels.abc", b"X:1\nK:D\nDEF|\n", upload).json()["files"] == 2
    archive = zipped({"set/a.abc": b"X:1\nK:G\nGAB|\n", "set/notes.pdf": b"%PDF", "set/latin.abc": "X:1\nT:caf\u00e9"
                      .encode("latin-1"), "set/empty.abc": b"", "set/fake.mid": b"not midi", "set/": b""})
    summary = send(client, "more.zip", archive, upload).json()
    assert (summary["files"], summary["skipped"]) == (3, 4)
    assert summary["reasons"] == ["notes.pdf: not .abc, .txt, .mid, .midi", "latin.abc: not UTF-8 text",
                                  "empty.abc: empty", "fake.mid: not a MIDI file"]
    assert [p.name for p in data_files(client, upload)] == ["0001-jigs.abc", "0002-reels.abc", "0003-a.abc"]


def test_a_zip_cannot_write_outside_its_folder_and_names_become_plain(client, runs):
    archive = zipped({"../../../escaped.abc": b"X:1\nK:G\nG|\n", "/etc/rooted.abc": b"X:1\nK:G\nG|\n",
                      "a\\..\\..\\win.abc": b"X:1\nK:G\nG|\n", ".hidden.abc": b"X:1\nK:G\nG|\n"})
    upload = send(client, "slip.zip", archive).json()["upload"]
    names = [p.name for p in data_files(client, upload)]
    assert names == ["0001-escaped.abc", "0002-rooted.abc", "0003-win.abc", "0004-hidden.abc"]
    data = client.app.state.trainings.uploads[upload].data
    assert list(runs.parent.rglob("*escaped.abc")) == [data / "0001-escaped.abc"]
    assert not (runs.parent.parent / "escaped.abc").exists()


def test_zip_bombs_damaged_zips_and_too_much_are_refused_in_one_line(client, monkeypatch):
    zeros = b"\0" * (8 * 2**20)  # 8 MiB of zeros compress to 8 KiB: read no further than one file's cap
    assert send(client, "one.zip", zipped({"big.abc": zeros})).json()["reasons"] == [
        "big.abc: over the 4 MiB cap for one file"]
    bomb = zipped({f"{n}.abc": zeros[:4 * 2**20] for n in range(20)})  # 80 MiB unpacked from 80 KiB
    assert len(bomb) < 2**20
    assert_one_line_4xx(send(client, "bomb.zip", bomb), "bomb.zip unpacks to over 64 MiB", status=413)
    assert_one_line_4xx(send(client, "broken.zip", b"PK\3\4 not really a zip"), "broken.zip is not a zip file")
    damaged = bytearray(zipped({"a.abc": TUNES.encode(), "b.abc": TUNES.encode()}))
    damaged[60:90] = b"\xff" * 30  # inside a.abc's compressed bytes: it cannot be unpacked, b.abc can
    summary = send(client, "damaged.zip", bytes(damaged)).json()
    assert (summary["files"], summary["skipped"]) == (1, 1)
    assert summary["reasons"] == ["a.abc: cannot be unpacked (damaged or encrypted)"]
    assert_one_line_4xx(send(client, "huge.zip", b"\0" * (training.MAX_ZIP_BYTES + 10)), "over the 32,768 KiB limit",
                        status=413)
    monkeypatch.setattr(training, "MAX_FILES", 3)
    upload = send(client, "two.zip", zipped({"a.abc": b"X:1\nK:G\nG|\n", "b.abc": b"X:1\nK:G\nG|\n"})).json()
    assert_one_line_4xx(send(client, "more.zip", zipped({"c.abc": b"X:1\n", "d.abc": b"X:1\n"}), upload["upload"]),
                        "more.zip would make 4 files; a training takes at most 3", status=413)
    assert send(client, "c.abc", b"X:1\nK:G\nG|\n", upload["upload"]).json()["files"] == 3  # the upload goes on
    assert_one_line_4xx(send(client, "a.abc", b"X:1\n", "nope"), "upload them again", status=404)


def test_the_train_endpoints_are_behind_the_studios_guard(runs, client):
    plain = {"Content-Type": "text/plain"}
    assert_one_line_4xx(client.post("/api/train/files?name=a.abc", content=TUNES, headers=plain),
                        "a POST to /api/train/files sends application/octet-stream", status=415)
    assert_one_line_4xx(client.post("/api/train/files?name=a.abc", content=TUNES, headers={**RAW, "Origin": ATTACKER}),
                        "may not change this studio", status=403)
    assert_one_line_4xx(client.post("/api/train", content=b"{}", headers=plain), "sends application/json", status=415)
    assert_one_line_4xx(client.post("/api/train/stop", json={}, headers={"Sec-Fetch-Site": "cross-site"}), status=403)
    with TestClient(create_app(runs), base_url="http://attacker.example:8765") as foreign:
        for url in ("/api/train/status", "/api/train/events"):
            assert_one_line_4xx(foreign.get(url), "does not answer to the host", status=403)
    assert client.app.state.trainings.uploads == {}


@pytest.mark.parametrize(("files", "settings", "fragment"), [
    ({}, {"minutes": 1}, "upload the files to train on first"),
    ({"a.abc": TUNES}, {"minutes": 0}, "minutes must lie in (0, 60], got 0"),
    ({"a.abc": TUNES}, {"minutes": 600}, "minutes must lie in (0, 60], got 600"),
    ({"a.abc": TUNES}, {"minutes": "soon"}, "minutes must be a number, got 'soon'"),
    ({"a.abc": TUNES}, {"minutes": 1, "base": "../../etc/passwd"}, "unknown base model '../../etc/passwd'"),
    ({"a.abc": TUNES}, {"minutes": 1, "base": "bach-chorales-small"},
     "bach-chorales-small is a voices model and the upload holds ABC tunes (.abc); pick a abc model, or none"),
    ({"a.txt": "some words"}, {"minutes": 1, "base": FOLK}, "folk-abc-small is a abc model and the upload holds text"),
    ({"a.abc": TUNES, "b.txt": "words"}, {"minutes": 1},
     "the upload mixes ABC tunes (.abc) and text (.txt); a model learns one kind"),
    ({"a.pdf": "%PDF"}, {"minutes": 1}, "none of the 1 uploaded files can train a model"),
])
def test_a_training_that_cannot_start_is_a_one_line_400(client, files, settings, fragment):
    upload = None
    for name, text in files.items():
        upload = send(client, name, text.encode(), upload).json()["upload"]
    assert_one_line_4xx(client.post("/api/train", json={"upload": upload, **settings}), fragment)
    assert client.app.state.trainings.current is None


def test_no_training_starts_while_a_generation_runs(client, monkeypatch):
    upload = send(client, "a.abc", TUNES.encode()).json()["upload"]
    monkeypatch.setattr(client.app.state.studio, "running", object())
    assert_one_line_4xx(client.post("/api/train", json={"upload": upload, "minutes": 1}),
                        "a generation is running; one heavy job runs at a time", status=409)
    assert_one_line_4xx(client.post("/api/train/stop", json={}), "no training is running", status=404)


def events(client) -> list[tuple[str, dict]]:
    """The training's stream to its end."""
    with client.stream("GET", "/api/train/events") as response:
        return read_events(response)


def test_a_fine_tune_streams_its_loss_and_samples_refuses_others_and_stop_keeps_its_best(runs):
    with TestClient(create_app(runs), base_url=LOCAL) as client:
        assert events(client) == [("idle", {})]
        upload = send(client, "tunes.abc", TUNES.encode()).json()["upload"]
        started = client.post("/api/train", json={"upload": upload, "base": "run:my-folk-run", "minutes": 2}).json()
        assert started["state"] == "running" and started["base"] == "run:my-folk-run" and started["files"] == 1
        assert_one_line_4xx(client.post("/api/train", json={"upload": upload, "minutes": 1}),
                            f"a training is running ({started['run']}, about 2 min left)", status=409)
        refused = client.post("/api/generate", json={"model": FOLK})
        assert_one_line_4xx(refused, "a training is running", "one heavy job runs at a time", status=409)
        assert client.get("/api/models").json()["training"] == refused.json()["error"]
        deadline = time.time() + 120
        while time.time() < deadline and not client.get("/api/train/status").json()["training"]["samples"]:
            time.sleep(0.5)
        assert client.post("/api/train/stop", json={}).json() == {"stopping": started["id"]}
        streamed = events(client)
        names = [name for name, _ in streamed]
        assert set(names[:-1]) <= {"progress"} and names[-1] == "ended"
        ended = streamed[-1][1]
        assert ended["state"] == "stopped" and ended["kept"] and ended["error"] is None, ended
        assert ended["seconds"] < 100 and ended["steps"] >= 1
        assert [m["step"] for m in ended["metrics"]] == sorted(m["step"] for m in ended["metrics"])
        assert ended["best_val_loss"] == min(m["val_loss"] for m in ended["metrics"])
        samples = ended["samples"]
        assert samples["texts"][0].startswith("X:") and samples["step"] in [m["step"] for m in ended["metrics"]]
        run = runs / started["run"]
        assert (run / "best.pt").is_file() and (run / "samples" / "index.jsonl").is_file()
        assert json.loads((run / "config.json").read_text())["parent"]["model"].endswith("best.pt")
        models = {m["id"]: m for m in client.get("/api/models").json()["models"]}
        assert models[started["model"]]["kind"] == "abc" and client.get("/api/models").json()["training"] is None
        result = client.post("/api/generate", json={"model": started["model"], "length": 60, "seed": 1})
        assert result.status_code == 200 and "event: result" in result.text
        assert_one_line_4xx(client.post("/api/train/stop", json={}), "no training is running", status=404)
    with TestClient(create_app(runs), base_url=LOCAL) as restarted:  # the history is kept on disk
        history = restarted.get("/api/train/status").json()["history"]
        assert [(h["run"], h["state"], h["kept"]) for h in history] == [(started["run"], "stopped", True)]


def test_a_training_that_fails_says_why_in_one_line_and_the_studio_goes_on(client):
    upload = send(client, "few.abc", b"X:1\nT:Few\nM:3/4\nL:1/8\nK:G\n|:GAB cde|dcB AGF|G6:|\n").json()["upload"]
    client.post("/api/train", json={"upload": upload, "base": FOLK, "minutes": 1}).raise_for_status()
    ended = events(client)[-1]
    assert ended[0] == "ended" and ended[1]["state"] == "failed" and not ended[1]["kept"]
    assert "too few" in ended[1]["error"] and "\n" not in ended[1]["error"]
    assert client.get("/api/models").json()["training"] is None
    assert client.post("/api/generate", json={"model": FOLK, "length": 20}).status_code == 200
    assert_one_line_4xx(send(client, "tunes.abc", TUNES.encode(), upload), "those files have trained a model",
                        status=409)  # the failed run's config names them: they stay as they were


def test_a_training_the_server_was_stopped_during_is_marked_interrupted(runs):
    history = runs / "studio" / "training" / "history.json"
    history.parent.mkdir(parents=True)
    history.write_text(json.dumps([{"id": "a1", "run": "studio-x", "started": "2026-01-01 10:00:00",
                                    "state": "running"}, {"nonsense": True}, "text"]))
    with TestClient(create_app(runs), base_url=LOCAL) as client:
        assert [(h["id"], h["state"]) for h in client.get("/api/train/status").json()["history"]] == [
            ("a1", "interrupted")]
