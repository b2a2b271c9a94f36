"""Hard limits for the symbolic path: comparisons run in worker processes that the caller kills on overrun.

Why processes: sympy can hang on innocent-looking input (``10^{10^{10^{10}}}``, ``9!!!!!!!!``) inside C-level big
integer arithmetic that no Python-level check interrupts, and ``signal.alarm`` works only in the main thread.
A worker is a plain ``python -m stepdpo_bench.grading.worker`` child speaking JSON lines over pipes: no fork of
a possibly multi-threaded caller (vLLM, torch), no re-import of the caller's ``__main__``.  A worker that
overruns its deadline is SIGKILLed and replaced; its comparison is reported as not equivalent ("timeout").
Each worker also runs under an address-space limit so a memory bomb fails fast with MemoryError, and under a
CPU-time limit per comparison (the kernel ends a runaway job even if nobody is left to kill it).

Workers die with their parent: on Linux each one asks the kernel for SIGKILL when the thread that started it
exits (``PR_SET_PDEATHSIG``), so workers are started from one long-lived spawner thread, and a worker also exits
when its stdin closes.  A caller killed with SIGKILL leaves no worker computing a tower for minutes.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import select
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

DEFAULT_TIMEOUT = float(os.environ.get("STEPDPO_GRADER_TIMEOUT", "5"))
STARTUP_TIMEOUT = 180.0  # a cold interpreter importing sympy on a loaded machine can take a while


class GraderWorkerError(RuntimeError):
    """A grader worker could not be started (broken environment), not a property of any answer."""


class _Spawner:
    """One long-lived thread that starts every worker, so the workers' parent-death signal (which the kernel ties
    to the *thread* that forked them) fires only when the process dies, not when a short-lived caller thread ends."""

    def __init__(self) -> None:
        self._requests: queue.Queue[tuple[queue.Queue, list[str]]] = queue.Queue()
        threading.Thread(target=self._run, name="grader-spawner", daemon=True).start()

    def _run(self) -> None:
        while True:
            reply, cmd = self._requests.get()
            try:
                reply.put(
                    subprocess.Popen(
                        cmd,
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        start_new_session=True,  # Ctrl-C goes to the caller, which cleans up
                        env={**os.environ, "STEPDPO_GRADER_PARENT": str(os.getpid())},
                    )
                )
            except Exception as exc:
                reply.put(exc)

    def popen(self, cmd: list[str]) -> subprocess.Popen:
        reply: queue.Queue = queue.Queue()
        self._requests.put((reply, cmd))
        res = reply.get()
        if isinstance(res, Exception):
            raise res
        return res


_spawner: _Spawner | None = None
_spawner_lock = threading.Lock()


def _spawn_process() -> subprocess.Popen:
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            _spawner = _Spawner()
    return _spawner.popen([sys.executable, "-m", "stepdpo_bench.grading.worker"])


class _Worker:
    def __init__(self) -> None:
        self.proc = _spawn_process()
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.fd = self.proc.stdout.fileno()
        self.started = time.monotonic()
        self.ready = False
        self.job: int | None = None
        self.deadline = 0.0
        self._buf = b""

    def fileno(self) -> int:
        return self.fd

    def send(self, job: int, payload: dict[str, Any], timeout: float) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(payload).encode() + b"\n")
        self.proc.stdin.flush()
        self.job = job
        self.deadline = time.monotonic() + timeout

    def read_lines(self) -> list[bytes]:
        data = os.read(self.fd, 1 << 16)
        if not data:
            raise EOFError
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        return lines

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()  # type: ignore[union-attr]


class GraderPool:
    """A small pool of grader workers; ``map`` grades many jobs in parallel, each under its own deadline."""

    def __init__(self, size: int | None = None) -> None:
        self.size = max(1, size or os.cpu_count() or 1)
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()

    def _spawn(self) -> _Worker:
        w = _Worker()
        self._workers.append(w)
        return w

    def _replace(self, w: _Worker) -> None:
        w.kill()
        self._workers.remove(w)
        self._spawn()  # starts importing now, ready by the time it is needed

    def map(
        self,
        payloads: Sequence[dict[str, Any]],
        timeout: float | None = None,
        on_result: Callable[[int, dict[str, Any]], None] | None = None,
        budget: float | None = None,
    ) -> list[dict[str, Any]]:
        """Run every payload through a worker; a payload that overruns ``timeout`` seconds yields a timeout, and
        when the whole call overruns ``budget`` seconds the jobs still waiting or running yield timeouts too."""
        timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        results: list[dict[str, Any] | None] = [None] * len(payloads)
        end = time.monotonic() + budget if budget else None
        with self._lock:
            pending = deque(range(len(payloads)))
            while len(self._workers) < min(self.size, len(payloads)):
                self._spawn()

            def finish(idx: int, res: dict[str, Any]) -> None:
                results[idx] = res
                if on_result is not None:
                    on_result(idx, res)

            while pending or any(w.job is not None for w in self._workers):
                if end is not None and time.monotonic() >= end:  # the batch's budget is spent
                    why = f"timeout: the batch's {budget:g}s budget ran out"
                    for w in list(self._workers):
                        if w.job is not None:
                            finish(w.job, {"equal": False, "reason": why})
                            self._replace(w)
                    while pending:
                        finish(pending.popleft(), {"equal": False, "reason": why, "unsent": True})
                    break
                for w in self._workers:
                    if w.ready and w.job is None and pending:
                        idx = pending.popleft()
                        w.send(idx, {**payloads[idx], "timeout": timeout}, timeout)
                now = time.monotonic()
                waiting = [w for w in self._workers if not w.ready or w.job is not None]
                deadlines = [w.deadline if w.ready else w.started + STARTUP_TIMEOUT for w in waiting]
                if end is not None:
                    deadlines.append(end)
                wait = max(0.0, min(deadlines) - now) if deadlines else 0.0
                readable, _, _ = select.select(waiting, [], [], wait)
                for w in readable:
                    try:
                        lines = w.read_lines()
                    except EOFError:
                        if not w.ready:
                            w.kill()
                            raise GraderWorkerError(
                                "a grader worker exited during start-up; run "
                                "`python -m stepdpo_bench.grading.worker` to see why"
                            ) from None
                        if w.job is not None:
                            finish(w.job, {"equal": False, "reason": "grader worker crashed"})
                        self._replace(w)
                        continue
                    for line in lines:
                        if not w.ready:
                            w.ready = line.strip() == b"ready"
                        elif w.job is not None:
                            finish(w.job, json.loads(line))
                            w.job = None
                now = time.monotonic()
                for w in list(self._workers):
                    if w.job is not None and now >= w.deadline:
                        finish(w.job, {"equal": False, "reason": f"timeout: no decision within {timeout:g}s"})
                        self._replace(w)
                    elif not w.ready and now >= w.started + STARTUP_TIMEOUT:
                        w.kill()
                        raise GraderWorkerError(f"a grader worker did not start within {STARTUP_TIMEOUT:g}s")
        return [r if r is not None else {"equal": False, "reason": "not graded"} for r in results]

    def close(self) -> None:
        with self._lock:
            for w in self._workers:
                w.kill()
            self._workers.clear()


_shared: GraderPool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> GraderPool:
    """The process-wide pool used by ``is_equivalent``; workers start on first symbolic comparison."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = GraderPool()
            atexit.register(_shared.close)
        return _shared
