"""Generate requests from several threads (browser tabs, artists) that share a model call join it."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from studio.engine import Studio
from studio.errors import StudioError


@pytest.fixture
def calls(fake, monkeypatch):
    """Every call of the fake medium's generate, as its list of seeds."""
    import fake_medium

    plain = fake_medium.FakeMedium.generate
    seen: list[list[int]] = []

    def counted(self, handle, prompt, seeds, params, adapter=None, strength=1.0):
        seen.append(list(seeds))
        if 13 in seeds:  # one request's own trouble
            raise StudioError("Seed 13 is unlucky.")
        if 666 in seeds:  # the process is stopped mid-call
            raise Stopped()
        return plain(self, handle, prompt, seeds, params, adapter, strength)

    monkeypatch.setattr(fake_medium.FakeMedium, "generate", counted)
    return seen


class Stopped(BaseException):
    """Stands in for a kill: not an Exception, so nothing may catch it as a request's error."""


def wait_until(what, condition, seconds=20.0):
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def at_once(studio, requests):
    """Run each request (generate's keyword arguments) in its own thread while the model is busy, and free the
    model once all of them wait in the line; returns each result or error, in order."""
    results: list = [None] * len(requests)
    places: list = []
    told: set = set()  # the requests that have reported a place in the line

    def one(i, kwargs):
        def waiting(*place):
            places.append(place)
            told.add(i)
        try:
            results[i] = studio.generate("fake", on_wait=waiting, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - the test looks at each request's own outcome
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i, kw)) for i, kw in enumerate(requests)]
    with studio._model_lock:  # another generate holds the model: the requests wait in line
        for t in threads:
            t.start()
        expected = len(requests)
        wait_until(f"{expected} requests waiting", lambda: sum(
            len(g.requests) for g in studio._joiner._waiting) == expected)
        # and each has said its place, but the one that leads the head group (it waits on the model, not the
        # line): a place first read after the model is free would see a shorter line than the one they joined
        wait_until(f"{expected - 1} places told", lambda: len(told) >= expected - 1)
    for t in threads:
        t.join(60)
    return results, places


def texts(candidates):
    return [Path(c.path).read_text() for c in candidates]


def test_requests_sharing_a_key_join_one_call_and_each_gets_its_own_batch(workspace, fake, calls, tmp_path):
    studio = Studio(workspace)
    requests = [{"prompt": "a colour", "seed": 10 * i, "n": 3} for i in range(6)]
    requests.append({"prompt": "a colour", "seed": 0, "n": 5})  # shares seeds 0-2 with the first
    results, places = at_once(studio, requests)
    assert len(calls) == 1 < len(requests)  # one model call for seven requests
    assert sorted(calls[0]) == sorted({s for r in requests for s in range(r["seed"], r["seed"] + r["n"])})
    assert any(p[2] == len(requests) for p in places)  # each was told it waits joined with the others
    alone = Studio(tmp_path / "alone")  # the same requests one by one, in another workspace
    for request, made in zip(requests, results):
        assert not isinstance(made, BaseException), made
        assert [c.seed for c in made] == list(range(request["seed"], request["seed"] + request["n"]))
        assert texts(made) == texts(alone.generate("fake", **request))  # exactly what it would have got alone
    stored = studio.store.candidates("fake")
    assert len(stored) == len({c.id for c in stored}) == 6 * 3 + 2  # nothing lost, nothing twice
    latest = studio.store.latest_batch("fake")
    batches = {b: {c.id for c in studio.store.candidates("fake", batch=b)} for b in range(1, latest + 1)}
    assert len(batches) == len(requests)  # a batch per request, each holding exactly its own candidates
    assert sorted(map(sorted, batches.values())) == sorted(sorted(c.id for c in made) for made in results)


def test_a_failing_request_does_not_fail_its_batchmates(workspace, fake, calls):
    studio = Studio(workspace)
    requests = [{"prompt": "a colour", "seed": 0, "n": 2}, {"prompt": "a colour", "seed": 12, "n": 2},
                {"prompt": "a colour", "seed": 20, "n": 2}]
    results, _ = at_once(studio, requests)
    assert sorted(calls[0]) == [0, 1, 12, 13, 20, 21] and len(calls) == 4  # joined, failed, then each alone
    assert isinstance(results[1], StudioError) and "unlucky" in str(results[1])
    assert [c.seed for c in results[0]] == [0, 1] and [c.seed for c in results[2]] == [20, 21]
    assert {c.seed for c in studio.store.candidates("fake")} == {0, 1, 20, 21}  # none of the failed one's


def test_a_stop_mid_call_fails_every_joined_request_and_stores_nothing(workspace, fake, calls):
    studio = Studio(workspace)
    results, _ = at_once(studio, [{"prompt": "a colour", "seed": 0, "n": 2},
                                  {"prompt": "a colour", "seed": 665, "n": 2}])
    assert any(isinstance(r, Stopped) for r in results)  # the thread that ran the call is stopped
    assert all(isinstance(r, BaseException) for r in results)  # the other is told, never left waiting
    assert studio.store.candidates("fake") == [] and studio.store.latest_batch("fake") is None
    assert not list(studio.store.media_dir("fake").glob("*"))
    again = studio.generate("fake", "a colour", seed=0, n=2)  # and the line is free again
    assert [c.seed for c in again] == [0, 1]


def test_different_keys_are_not_joined(workspace, fake, calls):
    studio = Studio(workspace)
    requests = [{"prompt": "a colour", "seed": 0, "n": 2}, {"prompt": "another colour", "seed": 0, "n": 2},
                {"prompt": "a colour", "seed": 0, "n": 2, "params": {"temperature": 2.0}},
                {"prompt": "a colour", "seed": 5, "n": 2}]  # joins the first
    results, places = at_once(studio, requests)
    assert not any(isinstance(r, BaseException) for r in results)
    assert sorted(map(sorted, calls)) == [[0, 1], [0, 1], [0, 1, 5, 6]]
    assert max(p[1] for p in places) == 3  # three groups in line
    assert {results[0][0].prompt, results[1][0].prompt} == {"a colour", "another colour"}
    assert results[2][0].params["temperature"] == 2.0 and results[0][0].id != results[2][0].id


def test_a_group_holds_at_most_the_cap(workspace, fake, calls, monkeypatch):
    import studio.engine

    monkeypatch.setattr(studio.engine, "JOIN_CAP", 4)  # the fake medium has no batch_size setting
    studio_ = Studio(workspace)
    results, _ = at_once(studio_, [{"prompt": "a colour", "seed": 10 * i, "n": 2} for i in range(4)])
    assert not any(isinstance(r, BaseException) for r in results)
    assert [len(c) for c in calls] == [4, 4]


def test_progress_reaches_each_joined_request_in_its_own_thread(workspace, fake, calls):
    studio = Studio(workspace)
    seen: dict[int, list] = {0: [], 1: []}
    threads_seen: dict[int, set] = {0: set(), 1: set()}
    requests = [{"prompt": "a colour", "seed": 0, "n": 8}, {"prompt": "a colour", "seed": 100, "n": 8}]
    for i, request in enumerate(requests):
        request["on_progress"] = (lambda i: lambda done, total: (seen[i].append((done, total)),
                                                                 threads_seen[i].add(threading.get_ident())))(i)
    results, _ = at_once(studio, requests)
    assert not any(isinstance(r, BaseException) for r in results)
    assert len(calls) == 2  # alone, each makes its 8 in chunks of 4: joined, a chunk of each in one call
    for i in (0, 1):
        assert seen[i][-1] == (8, 8) and len(threads_seen[i]) == 1
    assert threads_seen[0] != threads_seen[1]  # each request's callback runs in its own thread (Gradio's context)


def test_a_medium_whose_seeds_depend_on_their_batch_mates_never_joins(workspace, fake, calls, monkeypatch):
    import fake_medium

    monkeypatch.setattr(fake_medium.FakeMedium, "joins_requests", False)
    studio = Studio(workspace)
    results, places = at_once(studio, [{"prompt": "a colour", "seed": 10 * i, "n": 2} for i in range(3)])
    assert not any(isinstance(r, BaseException) for r in results)
    assert len(calls) == 3 and max(p[2] for p in places) == 1  # one request a call, each in line alone


def test_a_caller_holding_the_model_is_never_put_behind_a_request_that_waits_for_it(workspace, fake, calls):
    studio = Studio(workspace)
    other = threading.Thread(target=studio.generate, args=("fake", "a colour"), kwargs={"n": 2})
    with studio._model_lock:
        other.start()
        wait_until("the other request in line", lambda: studio._joiner._waiting)
        made = studio.generate("fake", "a colour", n=2, seed=50)  # would wait forever for its own lock
    other.join(30)
    assert [c.seed for c in made] == [50, 51] and not other.is_alive() and len(calls) == 2
