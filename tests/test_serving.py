"""Serving: the Recommender in process, and a real ``whatnext serve`` process over HTTP.

One tiny run is trained once for the module; the HTTP tests share one server (and start two more
for the crash test). Every loop is bounded and every server listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from test_serving_helpers import Server, trained_project

from whatnext import checkpoints, engine
from whatnext.errors import ConfigError, NotFoundError
from whatnext.search import ExactIndex
from whatnext.serving.index import ServingIndex
from whatnext.serving.recommender import Recommender

TOKEN = "test-token-0123456789"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained_project(tmp_path_factory.mktemp("serving") / "p")


@pytest.fixture(scope="module")
def server(project: Path):
    with Server(project, "--token", TOKEN, "--watch", "0.3") as s:
        yield s


# ---------------------------------------------------------------- in process


def test_whatnext_exports_recommender_lazily() -> None:
    import subprocess
    import sys

    code = "import sys, whatnext; assert 'torch' not in sys.modules; R = whatnext.Recommender; print(R.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "Recommender"


def test_recommender_equals_engine_recommend(project: Path) -> None:
    rec = Recommender.load(project)
    for user in ("1", "7", "30"):
        for include_seen in (False, True):
            want = engine.recommend(project, user=user, k=5, include_seen=include_seen)
            assert rec.recommend(user=user, k=5, include_seen=include_seen) == want
    history = ["3", "1", "4", "1", "5"]
    assert rec.recommend(history=history, k=7) == engine.recommend(project, history=history, k=7)
    diverse = engine.recommend(project, {"recommend.diversity": 0.5}, user="7", k=5)
    assert rec.recommend(user="7", k=5, diversity=0.5)["recommendations"] == diverse["recommendations"]
    assert rec.recommend(user="7", k=5)["diversity"] == 0.0  # a per-request weight changes nothing shared


def test_every_row_has_the_cli_fields_and_scores_do_not_increase(project: Path) -> None:
    out = Recommender.load(project).recommend(user="2", k=10)
    assert {"user", "history_length", "history", "k", "include_seen", "diversity", "checkpoint", "step", "ranked_by",
            "recommendations", "warnings"} <= set(out)
    scores = [r["score"] for r in out["recommendations"]]
    assert len(scores) == 10 and scores == sorted(scores, reverse=True)
    assert {"rank", "item_id", "score", "distance", "title", "attributes"} <= set(out["recommendations"][0])


def test_observed_plays_are_the_users_newest_history(project: Path) -> None:
    rec = Recommender.load(project)
    before = rec.recommend(user="4", k=5)
    rec.observe("4", ["11", "12", "13"])
    after = rec.recommend(user="4", k=5)
    assert after["history_length"] == before["history_length"] + 3
    assert after["history"][-3:] == ["11", "12", "13"]
    full = [str(rec.dataset.catalogue.ids[i]) for i in rec.history_of("4")]
    assert after["recommendations"] == rec.recommend(history=full, k=5)["recommendations"]
    rec.observe("brand-new", ["5"])  # a cold user
    assert rec.recommend(user="brand-new", k=3)["history"] == ["5"]
    with pytest.raises(NotFoundError):
        rec.observe("4", ["no-such-song"])
    with pytest.raises(NotFoundError):
        rec.recommend(user="never-seen")
    with pytest.raises(ConfigError):
        rec.recommend(user="4", k=0)


def test_recommenders_sharing_a_play_log_see_each_others_plays(project: Path, tmp_path: Path) -> None:
    """What --workers N relies on: a play one process acknowledged is in every process's next answer."""
    log = tmp_path / "plays.jsonl"
    first, second = Recommender.load(project, plays=log), Recommender.load(project, plays=log)
    first.observe("7", ["11"])
    second.observe("shared", ["3", "4"])
    assert second.recommend(user="7", k=3)["history"][-1] == "11"
    assert first.recommend(user="shared", k=3)["history"] == ["3", "4"]
    third = Recommender.load(project, plays=log)  # a restart replays the log
    assert third.recommend(user="shared", k=3) == first.recommend(user="shared", k=3)


@pytest.mark.parametrize("n, d, grid", [(40, 3, 4), (3000, 8, 2), (20000, 16, None)])
def test_serving_index_answers_as_the_exact_index(n: int, d: int, grid: int | None) -> None:
    rng = np.random.default_rng(n)
    vectors = (rng.integers(0, grid + 1, (n, d)) / grid if grid else rng.normal(size=(n, d))).astype(np.float32)
    exact, fast = ExactIndex(vectors), ServingIndex(vectors)
    for _ in range(10):
        q = vectors[rng.integers(n)][None, :] + rng.normal(scale=0.01, size=(1, d)).astype(np.float32) * (grid is None)
        ex = [rng.integers(0, n, 20)]
        for k in (1, 10, 60, n + 2):
            i1, d1 = exact.search(q, k, ex)
            i2, d2 = fast.search(q, k, ex)
            assert (i1 == i2).all()
            np.testing.assert_allclose(d1[np.isfinite(d1)], d2[np.isfinite(d2)], rtol=1e-9)


# ---------------------------------------------------------------- over HTTP


def test_every_endpoint(server: Server, project: Path) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        r = c.get("/v1/users/7/recommendations", params={"k": 5})
        assert r.status_code == 200
        assert r.json() == engine.recommend(project, user="7", k=5) | {"checkpoint": r.json()["checkpoint"]}
        r = c.post("/v1/recommendations", json={"history": ["3", "1", "4"], "k": 4, "include_seen": True})
        assert r.status_code == 200 and len(r.json()["recommendations"]) == 4
        assert r.json()["recommendations"] == engine.recommend(project, history=["3", "1", "4"], k=4,
                                                               include_seen=True)["recommendations"]
        r = c.get("/v1/users/7/recommendations", params={"k": 5, "diversity": 0.5})
        assert r.status_code == 200 and r.json()["diversity"] == 0.5
        item = c.get("/v1/items/3").json()
        assert item["item_id"] == "3" and item["title"] == "Song 3" and set(item["attributes"]) == {"f0", "f1", "f2"}
        health = c.get("/health").json()
        best = checkpoints.marker(project.parent / "models" / "default", "best")
        assert health["catalogue_size"] == 40 and health["checkpoint"] == str(best) and health["model"] == "lstm"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        r = c.post("/v1/users/endpoint-user/plays", json={"items": ["2", "9"]}, headers=auth)
        assert r.status_code == 200 and r.json()["accepted"] == 2
        assert c.get("/v1/users/endpoint-user/recommendations").json()["history"] == ["2", "9"]
        metrics = c.get("/metrics")
        assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
        assert 'whatnext_requests_total{endpoint="/v1/users/{user_id}/recommendations",method="GET",status="200"}' in metrics.text
        assert 'whatnext_request_seconds_bucket{endpoint="/v1/items/{item_id}"' in metrics.text


@pytest.mark.parametrize("method, path, body, status, fragment", [
    ("GET", "/v1/users/nobody/recommendations", None, 404, "unknown user 'nobody'"),
    ("GET", "/v1/items/nothing", None, 404, "unknown item 'nothing'"),
    ("POST", "/v1/recommendations", {"history": ["3", "zz"]}, 404, "unknown item 'zz'"),
    ("GET", "/v1/users/7/recommendations?k=0", None, 422, "k"),
    ("GET", "/v1/users/7/recommendations?k=abc", None, 422, "k"),
    ("GET", "/v1/users/7/recommendations?k=41", None, 422, "catalogue has only 40"),
    ("GET", "/v1/users/7/recommendations?diversity=-1", None, 422, "diversity"),
    ("POST", "/v1/recommendations", {"history": []}, 422, "history"),
    ("POST", "/v1/recommendations", {"history": ["3"], "k": "ten"}, 422, "k"),
    ("POST", "/v1/recommendations", {"history": ["3"], "extra": 1}, 422, "extra"),
    ("POST", "/v1/recommendations", b"{not json", 422, "not valid JSON"),
    ("POST", "/v1/recommendations", {"history": ["3"] * 10_001}, 422, "history"),
    ("POST", "/v1/recommendations", b'{"history": ["' + b"x" * (2 << 20) + b'"]}', 413, "over"),
    ("POST", "/v1/users/7/plays", {"items": ["3"]}, 401, "Bearer"),
    ("GET", "/v2/nothing", None, 404, "no such endpoint"),
    ("DELETE", "/health", None, 405, "Method Not Allowed"),
])
def test_every_error_is_json_with_a_4xx_status(server: Server, method: str, path: str, body: object, status: int,
                                                fragment: str) -> None:
    content = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
    r = httpx.request(method, server.url + path, content=content, timeout=30)
    assert r.status_code == status, r.text
    out = r.json()
    assert out["status"] == status and fragment in out["error"] and "Traceback" not in r.text


def test_the_token_guards_the_write_endpoint(server: Server) -> None:
    url = server.url + "/v1/users/token-user/plays"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"}):
        r = httpx.post(url, json={"items": ["1"]}, headers=headers, timeout=30)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert httpx.get(server.url + "/v1/users/token-user/recommendations", timeout=30).status_code == 404
    r = httpx.post(url, json={"items": ["1"]}, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert r.status_code == 200
    assert httpx.get(server.url + "/v1/users/7/recommendations", timeout=30).status_code == 200  # reads stay open


def _log(project: Path) -> list[dict]:
    path = project.parent / "models" / "default" / "plays.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_concurrent_reads_with_interleaved_plays(server: Server, project: Path) -> None:
    """1,000 requests from 8 threads, one in five a play: every acknowledged play is in the log, and the
    user's next recommendation follows it."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    rng = np.random.default_rng(0)
    jobs = [("play", f"c{i % 20}", [str(x) for x in rng.integers(0, 40, 2)]) if i % 5 == 0 else ("read", str(1 + i % 30), None)
            for i in range(1000)]

    def one(job: tuple[str, str, list[str] | None], client: httpx.Client) -> tuple[int, tuple]:
        kind, user, items = job
        if kind == "play":
            r = client.post(f"/v1/users/{user}/plays", json={"items": items}, headers=auth)
            return r.status_code, (user, items)
        return client.get(f"/v1/users/{user}/recommendations", params={"k": 5}).status_code, ()

    with httpx.Client(base_url=server.url, timeout=30, limits=httpx.Limits(max_connections=8)) as client:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda j: one(j, client), jobs))
        assert [s for s, _ in results] == [200] * 1000
        acked = [play for s, play in results if play]
        logged = [(rec["user"], rec["items"]) for rec in _log(project)]
        for play in acked:
            assert play in logged
        for user in {u for u, _ in acked}:
            mine = [items for u, items in logged if u == user]
            want = [x for items in mine for x in items]
            got = client.get(f"/v1/users/{user}/recommendations").json()
            assert got["history_length"] == len(want) and got["history"] == want[-5:]


def test_hot_reload_under_load_fails_no_request(server: Server, project: Path) -> None:
    run_dir = project.parent / "models" / "default"
    best = checkpoints.marker(run_dir, "best")
    other = next(c.path for c in checkpoints.listing(run_dir) if c.path != best)  # the run has two checkpoints
    statuses: list[int] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            while not stop.is_set() and len(statuses) < 5000:
                statuses.append(c.get("/v1/users/5/recommendations", params={"k": 5}).status_code)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for target in (other, best):
            checkpoints.set_marker(run_dir, "best", target)
            end = time.monotonic() + 30
            while httpx.get(server.url + "/health", timeout=30).json()["checkpoint"] != str(target):
                assert time.monotonic() < end, f"no reload to {target.name}: {server.output()}"
                time.sleep(0.1)
        server.proc.send_signal(signal.SIGHUP)  # a reload on demand: the same checkpoint, nothing changes
        end = time.monotonic() + 30
        while 'whatnext_reloads_total{result="unchanged"}' not in httpx.get(server.url + "/metrics", timeout=30).text:
            assert time.monotonic() < end, "SIGHUP did not reload"
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert statuses and set(statuses) == {200}
    assert httpx.get(server.url + "/health", timeout=30).json()["reload_error"] is None


def test_sigkill_loses_no_acknowledged_play(project: Path, tmp_path: Path) -> None:
    """Plays stream in; the server is killed with SIGKILL mid-stream and started again: every play it
    acknowledged is in the log, in order, and in the users' histories after the restart."""
    log = tmp_path / "plays.jsonl"
    acked: list[tuple[str, list[str]]] = []
    first = Server(project, "--plays", str(log), "--watch", "0").wait()

    def stream() -> None:
        with httpx.Client(base_url=first.url, timeout=10) as c:
            for i in range(100_000):
                items = [str(i % 40), str((7 * i) % 40)]
                try:
                    r = c.post(f"/v1/users/k{i % 7}/plays", json={"items": items})
                except httpx.HTTPError:
                    return
                if r.status_code != 200:
                    return
                acked.append((f"k{i % 7}", items))

    writer = threading.Thread(target=stream)
    writer.start()
    end = time.monotonic() + 30
    while len(acked) < 40 and time.monotonic() < end:
        time.sleep(0.02)
    first.kill(signal.SIGKILL)
    writer.join(timeout=30)
    assert len(acked) >= 40, first.output()
    logged = [(rec["user"], rec["items"]) for rec in map(json.loads, log.read_text().splitlines())]
    assert logged[: len(acked)] == acked  # in order; at most one more line: a play written but not yet answered
    assert len(logged) <= len(acked) + 1
    with Server(project, "--plays", str(log), "--watch", "0") as second, httpx.Client(base_url=second.url, timeout=30) as c:
        for user in {u for u, _ in acked}:
            want = [x for u, items in logged if u == user for x in items]
            got = c.get(f"/v1/users/{user}/recommendations").json()
            assert got["history_length"] == len(want) and got["history"] == want[-5:]


def test_two_workers_answer_alike_and_see_each_others_plays(project: Path, tmp_path: Path) -> None:
    """``--workers 2``: two processes behind one port. Every answer equals the in-process one, and a play
    acknowledged by one worker is in the next answer of the other (connections land on either worker)."""
    want = engine.recommend(project, user="7", k=5)
    played: list[str] = []
    across, pids = 0, set()
    with Server(project, "--workers", "2", "--plays", str(tmp_path / "plays.jsonl"), "--watch", "0").wait(180) as s:
        end = time.monotonic() + 90
        i = 0
        while (i < 20 or across < 3 or len(pids) < 2) and time.monotonic() < end:
            items = [str(i % 40), str((3 * i) % 40)]
            with httpx.Client(base_url=s.url, timeout=30) as writer:  # a new connection each time
                wrote = writer.get("/health").json()["pid"]
                assert writer.post("/v1/users/shared/plays", json={"items": items}).status_code == 200
            played += items
            with httpx.Client(base_url=s.url, timeout=30) as reader:
                read = reader.get("/health").json()["pid"]
                got = reader.get("/v1/users/shared/recommendations", params={"k": 5}).json()
                assert got["history_length"] == len(played) and got["history"] == played[-5:]
                assert reader.get("/v1/users/7/recommendations", params={"k": 5}).json() == want
            pids |= {wrote, read}
            across += wrote != read
            i += 1
    assert len(pids) == 2, f"one worker answered everything: {s.output()}"
    assert across >= 3, f"only {across} of {i} plays were read back by the other worker"
