"""The studio's HTTP endpoints (`genseq serve`): the page, models, generation as a stream, stop, queue, files."""

import json
import signal
import socket
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

import genseq
from genseq.lm.sampling import StopSampling
from genseq.music import controls
from genseq.serve import app, create_app, studio
from tests.helpers import FOLK, LOCAL, RAW, TUNE, assert_one_line_4xx, free_port, run_cli, stream, studio_process


def post_file(client, url: str, content) -> httpx.Response:
    """A primer file posted as the page posts it: the raw bytes."""
    return client.post(url, content=content, headers=RAW)


def test_the_page_and_its_assets_come_from_the_package_and_name_nothing_outside(client):
    page = client.get("/")
    assert page.status_code == 200 and "genseq studio" in page.text
    for name, media in (("studio.js", "javascript"), ("studio.css", "text/css")):
        asset = client.get(f"/static/{name}")
        assert asset.status_code == 200 and media in asset.headers["content-type"]
        assert "://" not in asset.text
    assert "://" not in page.text
    assert_one_line_4xx(client.get("/static/../studio.py"), status=404)
    assert_one_line_4xx(client.get("/docs"), "no such page: /docs", status=404)


def test_models_lists_shipped_models_and_runs_with_corpus_size_and_best_loss(client):
    listing = client.get("/api/models").json()
    assert listing["precisions"] == ["auto", "fp32", "bf16", "int8"] and listing["limits"]["length"] == 20_000
    assert listing["audio"] in ("midirenderer", "tinysoundfont") and listing["busy"] is False
    models = {m["id"]: m for m in listing["models"]}
    assert models[FOLK] | {"best_val_loss": None} == {
        "id": FOLK, "name": FOLK, "source": "shipped", "kind": "abc", "corpus": "folk-abc", "size": "2x384",
        "best_val_loss": None, "temperature": 1.0}
    assert 0.5 < models[FOLK]["best_val_loss"] < 1.5
    assert (models["bach-chorales-small"]["kind"], models["bach-chorales-small"]["temperature"]) == ("voices", 0.8)
    run = models["run:my-folk-run"]
    assert (run["source"], run["corpus"], run["size"], run["best_val_loss"]) == ("run", "folk-abc", "2x256", 0.95)


def test_a_request_without_a_temperature_samples_at_the_models_own(runs):
    """bach-chorales-small ships temperature 0.8: the studio samples at it unless the request names one."""
    chosen = studio.Studio(runs)
    own = chosen.prepare({"model": "bach-chorales-small", "length": 40, "seed": 3})
    assert own.prepared.config.temperature == own.settings["temperature"] == 0.8
    named = chosen.prepare({"model": "bach-chorales-small", "length": 40, "seed": 3, "temperature": 1.0})
    assert named.prepared.config.temperature == named.settings["temperature"] == 1.0
    drawn = own.prepared.model.sample_ids(own.primer, **own.prepared.request.options)
    model = genseq.load("bach-chorales-small")
    at_own = model.sample_ids(length=40, seed=3, temperature=0.8)
    assert drawn == at_own != model.sample_ids(length=40, seed=3, temperature=1.0)


def test_generation_streams_tokens_then_a_result_with_audio_score_and_downloads(client):
    events = stream(client, {"model": FOLK, "length": 300, "seed": 5, "temperature": 0.9})
    names = [name for name, _ in events]
    assert names[:2] == ["job", "started"] and names[-2:] == ["rendering", "result"] and "tokens" in names
    streamed = "".join(data["text"][0] for name, data in events if name == "tokens")
    result = events[-1][1]
    assert result["settings"]["seed"] == 5 and result["kind"] == "abc" and not result["stopped"]
    sample = result["samples"][0]
    assert sample["text"] == streamed and streamed.startswith("X:")
    assert set(sample["files"]) == {"abc", "mid", "wav", "svg", "musicxml"} and sample["notes"]
    url = f"/api/results/{result['id']}/1"
    assert client.get(f"{url}/abc").text == streamed
    midi = client.get(f"{url}/mid")
    assert midi.content[:4] == b"MThd" and midi.headers["content-type"] == "audio/midi"
    assert f'genseq-{result["id"]}-1.mid' in midi.headers["content-disposition"]
    wav = client.get(f"{url}/wav?inline=1")
    assert wav.headers["content-disposition"].startswith("inline")
    with wave.open(str(write(client, wav.content))) as audio:
        seconds = audio.getnframes() / audio.getframerate()
    end = max(note[2] for note in sample["notes"])
    assert seconds == pytest.approx(end + 1.0, abs=0.05)
    assert client.get(f"{url}/svg").text.startswith("<svg")
    assert b"<score-partwise" in client.get(f"{url}/musicxml").content


def write(client, data: bytes) -> Path:
    path = Path(client.app.state.studio.runs) / "download.wav"
    path.write_bytes(data)
    return path


def test_a_seed_repeats_its_samples_and_a_new_seed_is_drawn_and_shown(client):
    settings = {"model": FOLK, "length": 120, "num_samples": 2, "precision": "fp32"}
    first = stream(client, {**settings, "seed": 11})[-1][1]
    again = stream(client, {**settings, "seed": 11})[-1][1]
    assert [s["text"] for s in first["samples"]] == [s["text"] for s in again["samples"]]
    drawn = stream(client, settings)[-1][1]
    assert isinstance(drawn["settings"]["seed"], int) and len(drawn["samples"]) == 2


@pytest.mark.parametrize(("settings", "fragment"), [
    ({"temperature": -1}, "--temperature must be a number >= 0"),
    ({"top_p": 2}, "--top-p must lie in (0, 1]"),
    ({"top_k": 0}, "--top-k must be positive"),
    ({"length": 0}, "length must lie in 1..20,000"),
    ({"length": 10**9}, "length must lie in 1..20,000"),
    ({"num_samples": 100}, "number of samples must lie in 1..16"),
    ({"seed": "abc"}, "seed must be a whole number, got 'abc'"),
    ({"length": 2.5}, "length must be a whole number"),
    ({"precision": "fp64"}, "--precision must be auto, fp32, bf16 or int8, got 'fp64'"),
    ({"primer": "X:1\n\u00e6\u00f8\u00e5\u2603"}, "this model never saw"),
    ({"model": "../../etc/passwd"}, "unknown model '../../etc/passwd'"),
    ({"upload": "nope"}, "upload it again"),
])
def test_bad_settings_are_a_one_line_400(client, settings, fragment):
    assert_one_line_4xx(client.post("/api/generate", json={"model": FOLK, **settings}), fragment)


def test_meter_key_and_unit_length_make_the_header_and_transpose_moves_the_tune(client):
    settings = {"model": FOLK, "length": 300, "seed": 4, "precision": "fp32", "meter": "6/8", "key": "G",
                "unit_length": "1/8"}
    plain = stream(client, settings)[-1][1]
    assert plain["samples"][0]["text"].startswith("X:1\nM:6/8\nL:1/8\nK:G\n")
    moved = stream(client, {**settings, "transpose": 2})[-1][1]
    assert moved["settings"]["transpose"] == 2 and moved["settings"]["meter"] == "6/8"
    assert moved["samples"][0]["text"] == controls.transpose_abc(plain["samples"][0]["text"], 2)
    assert moved["samples"][0]["text"].startswith("X:1\nM:6/8\nL:1/8\nK:A\n")
    assert client.get(f"/api/results/{moved['id']}/1/abc").text == moved["samples"][0]["text"]


@pytest.mark.parametrize(("settings", "fragment"), [
    ({"meter": "7/x"}, "--meter '7/x' is not an ABC meter; write e.g. 6/8"),
    ({"key": "H"}, "--key 'H' is not an ABC key"),
    ({"key": "G", "primer": "X:1\n"}, "give them or a primer, not both"),
    ({"transpose": "up"}, "transpose must be a whole number, got 'up'"),
])
def test_bad_tune_controls_get_the_clis_one_line_messages(client, settings, fragment):
    assert_one_line_4xx(client.post("/api/generate", json={"model": FOLK, **settings}), fragment)


def test_a_body_that_is_no_json_object_or_too_big_is_refused(client):
    as_json = {"Content-Type": "application/json"}
    assert_one_line_4xx(client.post("/api/generate", content=b"{nope", headers=as_json), "not JSON")
    assert_one_line_4xx(client.post("/api/generate", json=[1, 2]), "JSON object")
    huge = json.dumps({"model": FOLK, "primer": "a" * 300_000})
    assert_one_line_4xx(client.post("/api/generate", content=huge, headers=as_json), "over the 256 KiB limit",
                        status=413)
    assert_one_line_4xx(client.get("/api/generate"), status=405)


def test_stop_keeps_what_was_written(client):
    def stop_at_first_tokens(name, data):
        if name == "job":
            stop_at_first_tokens.job = data["id"]
        if name == "tokens" and not hasattr(stop_at_first_tokens, "sent"):
            stop_at_first_tokens.sent = client.post(f"/api/jobs/{stop_at_first_tokens.job}/stop", json={})

    events = stream(client, {"model": FOLK, "length": 20000, "stop_at_end": False, "seed": 2},
                    stop_at_first_tokens)
    assert stop_at_first_tokens.sent.json() == {"stopping": stop_at_first_tokens.job}
    result = events[-1][1]
    assert result["stopped"] and result["steps"] < 20000
    streamed = "".join(data["text"][0] for name, data in events if name == "tokens")
    # every step streamed one character, but an end token (the sample runs on past it here) shows as none
    assert result["samples"][0]["text"] == streamed and 0 <= result["steps"] - len(streamed) <= streamed.count("X:")
    assert client.get("/api/history").json()["results"][0]["stopped"]
    assert_one_line_4xx(client.post(f"/api/jobs/{stop_at_first_tokens.job}/stop", json={}), "no running or waiting job",
                        status=404)


def test_a_failed_generation_is_one_line_and_the_server_keeps_serving(client, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(studio.export, "export_samples", broken)
    events = stream(client, {"model": FOLK, "length": 50})
    assert events[-1] == ("error", {"error": "generation failed: RuntimeError: disk on fire"})
    monkeypatch.undo()
    assert stream(client, {"model": FOLK, "length": 50})[-1][0] == "result"
    assert client.get("/api/models").json()["busy"] is False


def test_downloads_come_only_from_the_studios_own_results(client):
    result = stream(client, {"model": FOLK, "length": 80})[-1][1]
    for url in (f"/api/results/{result['id']}/1/py", f"/api/results/{result['id']}/2/mid",
                f"/api/results/{result['id']}/0/mid", f"/api/results/{result['id']}/1/txt",
                "/api/results/..%2F..%2Fetc/1/mid", "/api/results/nope/1/mid", "/api/results/nope",
                f"/api/results/{result['id']}/1/..%2Fresult.json"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "error" in response.json()


def test_history_is_kept_on_disk_and_a_restart_loses_nothing(runs, client):
    result = stream(client, {"model": "run:my-folk-run", "length": 400, "seed": 3})[-1][1]
    assert result["corpus"] == "folk-abc"
    with TestClient(create_app(runs), base_url=LOCAL) as restarted:
        history = restarted.get("/api/history").json()["results"]
        assert [h["id"] for h in history] == [result["id"]] and history[0]["settings"]["seed"] == 3
        shown = restarted.get(f"/api/results/{result['id']}").json()
        assert shown == client.get(f"/api/results/{result['id']}").json()  # as the first studio showed it
        assert {k: v for k, v in shown.items() if k not in ("samples", "versions")} == \
            {k: v for k, v in result.items() if k != "samples"} and shown["versions"] == [result["id"]]
        assert [{k: v for k, v in s.items() if k != "bars"} for s in shown["samples"]] == result["samples"]
        assert restarted.get(f"/api/results/{result['id']}/1/mid").content[:4] == b"MThd"
    assert (runs / "studio" / "results" / result["id"] / "result.json").is_file()


def test_an_abc_primer_file_comes_back_as_its_first_tune(client):
    response = post_file(client, f"/api/primer?model={FOLK}&name=tunes.abc", TUNE + "\nX:2\nT:Other\nK:D\nD\n")
    assert response.json() == {"kind": "text", "name": "tunes.abc", "text": TUNE + "\n"}


def test_hostile_or_wrong_primer_files_get_the_clis_one_line_errors(client):
    assert_one_line_4xx(post_file(client, f"/api/primer?model={FOLK}&name=song.mid", b"MThd"),
                        "song.mid cannot prime this abc model; give a text or .abc file")
    assert_one_line_4xx(post_file(client, f"/api/primer?model={FOLK}&name=run.exe", b"x"), "run.exe: a primer")
    assert_one_line_4xx(post_file(client, "/api/primer?model=bach-chorales-small&name=bad.mid", b"MThd not really"),
                        "bad.mid")
    too_big = b"a" * (studio.MAX_UPLOAD_BYTES + 10)
    assert_one_line_4xx(post_file(client, f"/api/primer?model={FOLK}&name=big.abc", too_big),
                        "over the 4,096 KiB limit", status=413)
    latin = "X:1\nT:caf\u00e9".encode("latin-1")
    assert_one_line_4xx(post_file(client, f"/api/primer?model={FOLK}&name=latin.abc", latin),
                        "latin.abc is not UTF-8")


def test_a_midi_primer_upload_primes_the_chorale_model(client, tmp_path):
    import pretty_midi

    chord = pretty_midi.PrettyMIDI(initial_tempo=120)  # a C major chord, one bar, in four named voices
    for name, pitch in zip(("Soprano", "Alto", "Tenor", "Bass"), (72, 64, 55, 48), strict=True):
        chord.instruments.append(pretty_midi.Instrument(program=0, name=name))
        chord.instruments[-1].notes.append(pretty_midi.Note(80, pitch, 0.0, 2.0))
    path = tmp_path / "chord.mid"
    chord.write(str(path))
    two = pretty_midi.PrettyMIDI()
    two.instruments += [pretty_midi.Instrument(program=0), pretty_midi.Instrument(program=0)]
    for instrument, pitch in zip(two.instruments, (72, 60), strict=True):
        instrument.notes.append(pretty_midi.Note(80, pitch, 0.0, 1.0))
    two.write(str(tmp_path / "two.mid"))
    assert_one_line_4xx(post_file(client, "/api/primer?model=bach-chorales-small&name=two.mid",
                                  (tmp_path / "two.mid").read_bytes()),
                        "the voices tokenizer needs 4 pitched tracks, or tracks named Soprano, Alto, Tenor, Bass")
    upload = post_file(client, "/api/primer?model=bach-chorales-small&name=chord.mid", path.read_bytes()).json()
    assert upload["kind"] == "midi" and upload["name"] == "chord.mid"
    assert_one_line_4xx(client.post("/api/generate", json={"model": FOLK, "upload": upload["upload"]}),
                        "another model")
    result = stream(client, {"model": "bach-chorales-small", "upload": upload["upload"], "length": 120,
                             "seed": 1})[-1][1]
    sample = result["samples"][0]
    assert result["settings"]["primer"] == "chord.mid"
    assert {"mid", "wav", "svg", "musicxml"} <= set(sample["files"]), sample["note"]
    assert sorted(n[0] for n in sample["notes"] if n[1] == 0) == [48, 55, 64, 72]
    assert result["settings"]["voice_leading"] is None  # the model's own default: on
    assert_one_line_4xx(client.post("/api/generate", json={"model": FOLK, "voice_leading": True}),
                        "--voice-leading keeps four-part writing rules for voices models; this is a abc model")
    assert_one_line_4xx(client.post("/api/generate", json={"model": "bach-chorales-small", "full_bars": True}),
                        "--full-bars keeps the bars of ABC tunes at their meter's length; this is a voices model")


def test_a_melody_upload_is_harmonised_by_the_chorale_model_note_for_note(client, tmp_path):
    import pretty_midi

    melody = pretty_midi.PrettyMIDI(initial_tempo=120)  # C D E F G, a half note each, in one unnamed track
    melody.instruments.append(pretty_midi.Instrument(program=0))
    for n, pitch in enumerate((72, 74, 76, 77, 79)):
        melody.instruments[0].notes.append(pretty_midi.Note(80, pitch, n * 1.0, n * 1.0 + 1.0))
    melody.write(str(tmp_path / "scale.mid"))
    upload = post_file(client, "/api/primer?model=bach-chorales-small&name=scale.mid",
                       (tmp_path / "scale.mid").read_bytes()).json()
    assert upload["kind"] == "melody" and upload["name"] == "scale.mid"
    events = stream(client, {"model": "bach-chorales-small", "upload": upload["upload"], "num_samples": 2, "seed": 5,
                             "length": 7})
    assert events[0][1]["settings"]["length"] > 7  # the melody's length, not the form's
    result = events[-1][1]
    assert result["settings"]["melody"] == "scale.mid" and "primer" not in result["settings"]
    for sample in result["samples"]:
        voices = {track for _, _, _, track, _ in sample["notes"]}
        top = [(pitch, start) for pitch, start, _, track, _ in sample["notes"] if track == 0]
        assert top == [(pitch, n * 1.0) for n, pitch in enumerate((72, 74, 76, 77, 79))] and voices == {0, 1, 2, 3}
        assert {"mid", "wav", "svg", "musicxml"} <= set(sample["files"])
    tune = post_file(client, "/api/primer?model=bach-chorales-small&name=jig.abc", TUNE).json()
    assert tune["kind"] == "melody"
    assert_one_line_4xx(post_file(client, "/api/primer?model=bach-chorales-small&name=empty.abc", b"X:1\nK:G\n"),
                        "empty.abc")


@pytest.fixture
def server(runs):
    """`genseq serve` on a free local port, as a user starts it: (its address, the process)."""
    with studio_process(runs) as started:
        yield started


def read_events(lines, until: str, events: list | None = None) -> list[tuple[str, dict]]:
    """(event, data) from an iterator of a stream's lines, up to and including the first `until` event
    (appended to `events` as they arrive, when given)."""
    events, name = [] if events is None else events, None
    for line in lines:
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[6:])))
            if name == until:
                return events
    return events


LONG = {"model": FOLK, "length": 20000, "stop_at_end": False}
"""A generation that runs for seconds (20,000 tokens), to stop or leave."""


def test_a_client_that_goes_away_stops_its_generation(server):
    url, _ = server
    with httpx.stream("POST", f"{url}/api/generate", json=LONG, timeout=60) as response:
        read_events(response.iter_lines(), until="tokens")
    deadline = time.time() + 5
    while httpx.get(f"{url}/api/models").json()["busy"] and time.time() < deadline:
        time.sleep(0.05)
    assert not httpx.get(f"{url}/api/models").json()["busy"]
    assert httpx.get(f"{url}/api/history").json()["results"] == []  # nothing kept for nobody


def test_one_generation_at_a_time_the_next_waits_with_its_place(server):
    url, _ = server
    second: list = []
    with httpx.stream("POST", f"{url}/api/generate", json=LONG, timeout=60) as first:
        lines = first.iter_lines()
        job = read_events(lines, until="tokens")[0][1]["id"]

        def wait_in_line():
            with httpx.stream("POST", f"{url}/api/generate", json={"model": FOLK, "length": 40}, timeout=60) as r:
                read_events(r.iter_lines(), until="result", events=second)

        waiter = threading.Thread(target=wait_in_line)
        waiter.start()
        deadline = time.time() + 10
        while len(second) < 2 and time.time() < deadline:
            time.sleep(0.05)
        httpx.post(f"{url}/api/jobs/{job}/stop", json={})
        assert read_events(lines, until="result")[-1][1]["stopped"]
    waiter.join(timeout=60)
    assert second[1] == ("queued", {"position": 2})
    assert [name for name, _ in second][-1] == "result"


def test_serve_listens_on_this_machine_and_warns_when_told_otherwise(runs):
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "genseq", "serve", "--port", str(port), "--runs", str(runs),
                                "--host", "0.0.0.0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        printed = process.stdout.readline()
        assert f"http://0.0.0.0:{port}/?token=" in printed
        assert "anyone who can reach port" in process.stderr.readline()
        token = printed.split("?token=")[1].split()[0]
        url = f"http://127.0.0.1:{port}/api/history"
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                refused = httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert refused.status_code == 403 and "needs its token" in refused.json()["error"]
        assert httpx.get(f"{url}?token={token}").status_code == 200
        assert httpx.get(f"{url}?token={token}", headers={"Host": "attacker.example"}).status_code == 403
    finally:
        process.terminate()
        process.wait(timeout=20)
    bad = run_cli("serve", "--port", "70000")
    assert bad.returncode == 2 and bad.stderr.strip() == "error: --port must lie in 1..65535, got 70000"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = subprocess.run([sys.executable, "-m", "genseq", "serve", "--port", str(port), "--runs", str(runs)],
                              capture_output=True, text=True, timeout=120)
    assert busy.returncode == 2 and busy.stdout == ""
    assert busy.stderr.strip() == (f"error: cannot listen on 127.0.0.1:{port} (Address already in use); "
                                   "pick another --port or --host")


def test_stop_sampling_keeps_the_tokens_drawn_so_far():
    model, steps = genseq.load(FOLK), []

    def stop_after_40(tokens):
        steps.append(1)
        if len(steps) == 40:
            raise StopSampling

    options = {"length": 300, "seed": 1, "num_samples": 2, "stop_at_end": False, "precision": "fp32"}
    stopped = model.sample_ids(on_step=stop_after_40, **options)
    assert [row for row in stopped] == [row[:40] for row in model.sample_ids(**options)]


def test_a_text_model_streams_text_and_offers_it_as_a_text_file(trained_run):
    with TestClient(create_app(trained_run.parent), base_url=LOCAL) as client:
        models = {m["id"]: m for m in client.get("/api/models").json()["models"]}
        assert models[f"run:{trained_run.name}"]["kind"] == "char"
        assert_one_line_4xx(client.post("/api/generate", json={"model": f"run:{trained_run.name}", "transpose": 2}),
                            "--transpose moves music; this is a text (char) model")
        events = stream(client, {"model": f"run:{trained_run.name}", "primer": "the ", "length": 60, "seed": 1})
        sample = events[-1][1]["samples"][0]
        assert sample["text"] == "the " + "".join(d["text"][0] for name, d in events if name == "tokens")
        assert set(sample["files"]) == {"txt"} and sample["notes"] == []
        url = f"/api/results/{events[-1][1]['id']}/1"
        assert client.get(f"{url}/txt").text == sample["text"]
        assert client.get(f"{url}/wav").status_code == 404


def test_ctrl_c_ends_open_streams_with_a_message_and_no_traceback(server):
    url, process = server
    with httpx.stream("POST", f"{url}/api/generate", json=LONG, timeout=60) as response:
        lines = response.iter_lines()
        read_events(lines, until="tokens")
        process.send_signal(signal.SIGINT)
        assert read_events(lines, until="error")[-1] == ("error", {"error": app.SHUTDOWN})
    process.wait(timeout=30)
    assert "Traceback" not in process.stderr.read()
