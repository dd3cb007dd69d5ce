"""The studio against other web sites and hostile input: every probe of issue #26 as an HTTP request."""

import json
import os
import threading
import time

import pytest
from starlette.testclient import TestClient

from genseq.serve import app, create_app
from tests.helpers import FOLK, LOCAL, RAW, TUNE, assert_one_line_4xx

ATTACKER = "http://attacker.example"


def test_a_foreign_host_is_refused_so_dns_rebinding_reads_nothing(runs):
    with TestClient(create_app(runs), base_url="http://attacker.example:8765") as foreign:
        for url in ("/", "/api/history", "/api/models", "/static/studio.js"):
            assert_one_line_4xx(foreign.get(url), "does not answer to the host 'attacker.example:8765'", status=403)
    for address in ("http://127.0.0.1:8765", "http://localhost:8765", "http://[::1]:8765", "http://localhost"):
        with TestClient(create_app(runs), base_url=address) as own:
            assert own.get("/api/history").status_code == 200, address
    with TestClient(create_app(runs, host="192.168.1.5", token="t"), base_url="http://192.168.1.5:8765") as named:
        assert named.get("/api/history?token=t").status_code == 200


def test_a_cross_origin_text_plain_post_runs_nothing(client):
    settings = json.dumps({"model": FOLK, "length": 10})
    plain = {"Content-Type": "text/plain"}
    assert_one_line_4xx(client.post("/api/generate", content=settings, headers={**plain, "Origin": ATTACKER}),
                        "a request from another site (http://attacker.example) may not change", status=403)
    assert_one_line_4xx(client.post("/api/generate", content=settings, headers=plain),
                        "a POST to /api/generate sends application/json, not text/plain", status=415)
    assert_one_line_4xx(client.post(f"/api/primer?model={FOLK}&name=t.abc", content=TUNE, headers=plain),
                        "sends application/octet-stream", status=415)
    assert_one_line_4xx(client.post(f"/api/primer?model={FOLK}&name=t.abc", content=TUNE,
                                    headers={**RAW, "Origin": ATTACKER}), status=403)
    assert_one_line_4xx(client.post("/api/generate", json={"model": FOLK}, headers={"Sec-Fetch-Site": "cross-site"}),
                        status=403)
    assert_one_line_4xx(client.post("/api/jobs/x/stop"), "sends application/json", status=415)
    assert client.get("/api/history").json()["results"] == []
    same_origin = client.post("/api/generate", json={"model": "nope"}, headers={"Origin": LOCAL})
    assert_one_line_4xx(same_origin, "unknown model 'nope'")  # past the guard: the studio's own check answers


def test_beyond_loopback_every_request_needs_the_token_the_page_then_carries(runs):
    with TestClient(create_app(runs, host="0.0.0.0", token="s3cret"), base_url=LOCAL) as remote:
        for url in ("/", "/api/history", "/api/history?token=guess"):
            assert_one_line_4xx(remote.get(url), "needs its token", status=403)
        assert remote.get("/api/history", headers={"Authorization": "token s3cret"}).status_code == 200
        page = remote.get("/?token=s3cret")
        assert page.status_code == 200 and "HttpOnly" in page.headers["set-cookie"]
        assert remote.get("/api/history").status_code == 200  # the cookie the page got
        assert remote.get("/static/studio.js").status_code == 200


def test_a_huge_transpose_is_refused_in_one_line(client):
    for value in (24_000_000, -49, 49):
        assert_one_line_4xx(client.post("/api/generate", json={"model": FOLK, "transpose": value}),
                            f"--transpose must lie in -48..48 semitones, got {value}")


@pytest.mark.parametrize(("body", "fragment"), [
    (b'{"model": "folk-abc-small", "length": 1e400}', "the request holds 1e400; JSON numbers must be finite"),
    (b'{"model": "folk-abc-small", "transpose": Infinity}', "the request holds Infinity"),
    (b'{"model": "folk-abc-small", "temperature": NaN}', "the request holds NaN"),
    (b'{"model": "folk-abc-small", "length": true}', "length must be a whole number, got True"),
    (b'{"model": "folk-abc-small", "temperature": [1]}', "temperature must be a number, got [1]"),
    (b'{"model": "folk-abc-small", "upload": [1, 2]}', "upload it again"),
    (b'{"model": "folk-abc-small", "upload": {"a": 1}}', "upload it again"),
    (b'{"model": ["folk-abc-small"]}', "unknown model"),
    (b'{"model": "folk-abc-small", "key": {"a": 1}}', "meter, key and unit length must be text"),
    (b'{"model": "folk-abc-small", "seed": 1000000000000000000000000000000}', "--seed must lie in 0..2**64-1"),
    (b'{"model": "folk-abc-small", "seed": -1}', "--seed must lie in 0..2**64-1"),
    (b'{"model": "folk-abc-small", "length": "1e400"}', "length must be a whole number"),
    (b'{"a": ' * 30_000 + b"1" + b"}" * 30_000, "nests arrays or objects deeper than 32 levels"),
    (b"[" * 240_000, "nests arrays or objects deeper than 32 levels"),
])
def test_non_finite_mistyped_or_nested_json_is_a_one_line_400(client, body, fragment):
    response = client.post("/api/generate", content=body, headers={"Content-Type": "application/json"})
    assert_one_line_4xx(response, fragment)


def plant_runs(folder) -> None:
    """A downloaded model folder, a config.json of bytes, a run folder reached through a link."""
    (folder / "downloaded").mkdir()
    (folder / "downloaded" / "config.json").write_text('{"architectures": ["GPT2"], "n_embd": 768}')
    (folder / "garbage").mkdir()
    (folder / "garbage" / "config.json").write_bytes(b"\xff\xfe not json")
    os.symlink(folder / "my-folk-run", folder / "linked")


def test_a_foreign_config_json_is_skipped_and_counted(client, runs):
    plant_runs(runs)
    listing = client.get("/api/models")
    assert listing.status_code == 200
    ids = [m["id"] for m in listing.json()["models"]]
    assert "run:my-folk-run" in ids and not {"run:downloaded", "run:garbage", "run:linked"} & set(ids)
    assert listing.json()["skipped"] == 3
    assert_one_line_4xx(client.post("/api/generate", json={"model": "run:downloaded"}), "unknown model")


def plant_history(folder) -> dict[str, str]:
    """Result records the studio did not write, each naming /etc/passwd in another way."""
    results = folder / "studio" / "results"
    planted = {"../": "20260101-000000-aaaaaa", "absolute": "20260101-000000-bbbbbb",
               "linked file": "20260101-000000-cccccc", "linked record": "20260101-000000-dddddd"}
    names = {"../": "../../../../../../etc/passwd", "absolute": "/etc/passwd"}
    for how, result_id in planted.items():
        kept = results / result_id
        kept.mkdir(parents=True)
        record = {"id": result_id, "settings": {}, "samples": [
            {"name": "x", "files": {"txt": names.get(how, "sample-01.txt")}, "notes": []}]}
        if how == "linked file":
            os.symlink("/etc/passwd", kept / "sample-01.txt")
        if how == "linked record":
            (folder / "elsewhere.json").write_text(json.dumps(record))
            os.symlink(folder / "elsewhere.json", kept / "result.json")
        else:
            (kept / "result.json").write_text(json.dumps(record))
    return planted


def test_planted_history_paths_and_links_are_never_served(runs):
    planted = plant_history(runs)
    with TestClient(create_app(runs), base_url=LOCAL) as client:
        history = client.get("/api/history").json()
        assert [r["id"] for r in history["results"]] == [planted["linked file"]] and history["skipped"] == 3
        for result_id in planted.values():
            response = client.get(f"/api/results/{result_id}/1/txt")
            assert response.status_code == 404 and "root:" not in response.text


def test_a_hostile_meter_upload_is_refused_at_once(client):
    started = time.perf_counter()
    tune = b"X:1\nM:99999/1\nL:1/8\nK:G\nGABc|\n"
    assert_one_line_4xx(client.post("/api/primer?model=bach-chorales-small&name=slow.abc", content=tune, headers=RAW),
                        "slow.abc", "the meter 99999/1 of this ABC tune is beyond 64/64")
    assert time.perf_counter() - started < 2


def test_uploads_beyond_two_at_once_get_429(client, monkeypatch):
    release, inside = threading.Event(), threading.Semaphore(0)

    def slow_read(model, name, data):
        inside.release()
        release.wait(10)
        return {"kind": "text", "name": name, "text": ""}

    monkeypatch.setattr(client.app.state.studio, "read_upload", slow_read)
    answers: list[int] = []

    def post() -> None:
        answers.append(client.post(f"/api/primer?model={FOLK}&name=a.abc", content=TUNE, headers=RAW).status_code)

    readers = [threading.Thread(target=post) for _ in range(app.MAX_UPLOADS)]
    for reader in readers:
        reader.start()
    for _ in readers:
        assert inside.acquire(timeout=10)
    assert_one_line_4xx(client.post(f"/api/primer?model={FOLK}&name=b.abc", content=TUNE, headers=RAW),
                        "reading 2 files already", status=429)
    release.set()
    for reader in readers:
        reader.join(10)
    assert answers == [200] * app.MAX_UPLOADS
