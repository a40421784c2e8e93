"""Generate requests that share a model call: several artists (or browser tabs) on one served studio.

Requests with the same key (medium, model, adapter and its strength, prompt, every generation setting)
that arrive while another generate waits for the model or holds it are joined into one call of the
medium's ``generate``, up to ``cap`` distinct seeds (the medium's ``batch_size`` setting, else
``JOIN_CAP``); each request gets back exactly its own seeds' outputs, and a seed two requests share is
made once.  The prompt is in the key because a medium's ``generate`` takes one prompt for all its seeds.

Every medium makes a seed's output from that seed alone (one random generator per seed), so a joined
request gets what it would have got alone (docs/page.md, "Several artists", says what was measured).
A joined call that fails is run again request by request, so an error reaches only the request it
belongs to.  Groups run one at a time, oldest first (the model lock
serialises every use of a model), so a waiting request can say its place in the line.

The engine knows nothing of the page: callbacks report a request's place and progress in its own thread.
"""
from __future__ import annotations

import math
import threading
from typing import Any, Callable, Hashable, Sequence

from .errors import StudioError

JOIN_CAP = 32  # distinct seeds in one joined call, for a medium without a batch_size setting
PROGRESS_CHUNK = 4  # with a progress callback, generate at least this many at a time (batching stays fast)
PROGRESS_UPDATES = 4  # ... and report about this many times per call
WAIT_POLL_SECONDS = 1.0  # a waiting request looks again at least this often (a callback's own clock)


def progress_chunk(n: int) -> int:
    """How many of ``n`` seeds one call makes when progress is shown: a few reports, each call still batched."""
    return max(PROGRESS_CHUNK, math.ceil(n / PROGRESS_UPDATES))


class _Request:
    def __init__(self, seeds: Sequence[int], on_progress: Callable[[int, int], None] | None,
                 on_wait: Callable[[int, int, int], None] | None):
        self.seeds = list(dict.fromkeys(int(s) for s in seeds))
        self.on_progress, self.on_wait = on_progress, on_wait
        self.made: dict[int, Any] = {}  # seed -> the medium's Generated
        self.error: BaseException | None = None
        self.finished = False


class _Group:
    """Requests joined into one call; open to more until its call starts."""

    def __init__(self, key: Hashable, cap: int, call: Callable[[list[int]], list[Any]]):
        self.key, self.cap, self.call = key, max(1, int(cap)), call
        self.requests: list[_Request] = []
        self.seeds: list[int] = []  # distinct, in the order they came
        self.started = False

    def fits(self, request: _Request) -> bool:
        have = set(self.seeds)
        new = [s for s in request.seeds if s not in have]
        return not self.started and len(self.seeds) + len(new) <= self.cap

    def add(self, request: _Request) -> None:
        self.requests.append(request)
        self.seeds = list(dict.fromkeys([*self.seeds, *request.seeds]))


class Coalescer:
    """Joins generate requests by key and runs the joined calls one at a time under ``model_lock``."""

    def __init__(self, model_lock: Any):
        self._model_lock = model_lock
        self._state = threading.Condition()
        self._waiting: list[_Group] = []  # formed and not started, oldest first
        self._next: _Group | None = None  # the group whose call is about to run or running

    def run(self, key: Hashable, seeds: Sequence[int], call: Callable[[list[int]], list[Any]], cap: int,
            on_progress: Callable[[int, int], None] | None = None,
            on_wait: Callable[[int, int, int], None] | None = None) -> dict[int, Any]:
        """``call(seeds)`` -> one output per seed, made while the model lock is held; returns seed -> output.

        ``on_wait(place, waiting, joined)``: while the request waits, its group's place in the line (1 is
        next), how many groups wait, and how many requests its group holds.  ``on_progress(done, total)``:
        once with 0 when its group's call starts, then after each chunk, this request's seeds made so far."""
        request = _Request(seeds, on_progress, on_wait)
        if not request.seeds:
            return {}
        if getattr(self._model_lock, "_is_owned", lambda: False)():  # the caller holds the model: never wait
            group = _Group(key, cap, call)
            group.add(request)
            self._call(group, leader=request)
            return self._result(request)
        with self._state:
            group = next((g for g in self._waiting if g.key == key and g.fits(request)), None)
            if group is None:
                group = _Group(key, cap, call)
                self._waiting.append(group)
            group.add(request)
            self._state.notify_all()
        self._wait(group, request)
        return self._result(request)

    @staticmethod
    def _result(request: _Request) -> dict[int, Any]:
        if request.error is not None:
            raise request.error
        return {s: request.made[s] for s in request.seeds}

    def _wait(self, group: _Group, request: _Request) -> None:
        """Report place and progress in this thread until the request is done; the group's first request
        runs the call when the group reaches the head of the line."""
        try:
            leads = self._wait_turn(group, request)
        except BaseException:  # e.g. a callback failed: leave the line, and the group to the next request
            with self._state:
                if not group.started and request in group.requests:
                    group.requests.remove(request)
                    group.seeds = list(dict.fromkeys(s for r in group.requests for s in r.seeds))
                    if not group.requests:
                        self._waiting.remove(group)
                    self._state.notify_all()
            raise
        if leads:
            self._lead(group, request)

    def _wait_turn(self, group: _Group, request: _Request) -> bool:
        """Wait, reporting, until the request is done (False) or it leads a group whose turn it is (True)."""
        said: tuple = ()
        while True:
            with self._state:
                if request.finished:
                    break
                if (group.requests[0] is request and self._next is None and self._waiting
                        and self._waiting[0] is group):
                    self._next = group
                    return True
                if not group.started:
                    status: tuple = ("wait", self._waiting.index(group) + 1, len(self._waiting),
                                     len(group.requests))
                else:
                    status = ("made", len(request.made))
                if status == said:
                    self._state.wait(WAIT_POLL_SECONDS)
                    continue
            said = status
            self._report(request, status)
        if request.on_progress is not None and said != ("made", len(request.made)):
            self._report(request, ("made", len(request.made)))
        return False

    def _lead(self, group: _Group, request: _Request) -> None:
        """The group's call: open to joins until the model is free, then closed and run."""
        try:
            with self._model_lock:
                with self._state:
                    self._waiting.remove(group)
                    group.started = True
                    self._state.notify_all()
                self._report(request, ("made", 0))
                self._call(group, leader=request)
        finally:
            with self._state:
                if group in self._waiting:
                    self._waiting.remove(group)
                self._next = None
                for r in group.requests:
                    if not r.made.keys() >= set(r.seeds) and r.error is None:
                        r.error = StudioError("The generate this request joined was stopped; try again.")
                    r.finished = True
                self._state.notify_all()

    @staticmethod
    def _report(request: _Request, status: tuple) -> None:
        if status[0] == "wait" and request.on_wait is not None:
            request.on_wait(*status[1:])
        elif status[0] == "made" and request.on_progress is not None:
            request.on_progress(status[1], len(request.seeds))

    def _call(self, group: _Group, leader: _Request | None = None) -> None:
        """The joined call in chunks; on a failure, each request alone for the seeds it still lacks."""
        made: dict[int, Any] = {}
        try:
            self._make(group, group.seeds, made, leader)
        except Exception as exc:
            if len(group.requests) == 1:
                group.requests[0].error = exc
                return
            for request in group.requests:  # alone, as it would have run: its error is its own
                try:
                    self._make(group, [s for s in request.seeds if s not in made], made, leader)
                except Exception as own:
                    request.error = own

    def _make(self, group: _Group, seeds: list[int], made: dict[int, Any], leader: _Request | None) -> None:
        if not seeds:
            return
        chunk = len(seeds)
        if any(r.on_progress is not None for r in group.requests):  # one chunk of each request's own, together
            chunk = sum(progress_chunk(len(r.seeds)) for r in group.requests)
        for start in range(0, len(seeds), chunk):
            part = seeds[start:start + chunk]
            out = group.call(part)
            if len(out) != len(part):
                raise StudioError(f"The medium made {len(out)} candidates for {len(part)} seeds.")
            made.update(zip(part, out))
            with self._state:
                for request in group.requests:
                    request.made.update({s: made[s] for s in request.seeds if s in made})
                self._state.notify_all()
            if leader is not None and leader.on_progress is not None:
                leader.on_progress(len(leader.made), len(leader.seeds))
