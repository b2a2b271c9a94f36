"""Grader worker process: reads JSON jobs on stdin, writes one JSON verdict per line on stdout.

Started by ``isolation.GraderPool``; never imported by the caller.  It limits its own address space first, so
a memory bomb in sympy raises MemoryError here instead of swapping the machine, and it moves fd 1 aside so a
stray ``print`` in a library cannot corrupt the protocol.
"""

from __future__ import annotations

import json
import os
import sys

MEMORY_MB = int(os.environ.get("STEPDPO_GRADER_MEMORY_MB", "4096"))


def _limit_memory() -> None:
    try:
        import resource

        limit = MEMORY_MB * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):  # not on this platform: the time limit still holds
        pass


def _die_with_parent() -> None:
    """Ask the kernel for SIGKILL when the parent goes (Linux); elsewhere stdin EOF still ends the loop."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    parent = os.environ.get("STEPDPO_GRADER_PARENT")
    if parent and os.getppid() != int(parent):  # the parent died before the signal was armed
        os._exit(0)


def _cpu_limit(seconds: float) -> None:
    """This job may use at most ``seconds`` more CPU time: a kernel-enforced bound on a runaway comparison."""
    try:
        import resource

        used = resource.getrusage(resource.RUSAGE_SELF).ru_utime + resource.getrusage(resource.RUSAGE_SELF).ru_stime
        soft = int(used + seconds) + 2
        resource.setrlimit(resource.RLIMIT_CPU, (soft, resource.RLIM_INFINITY))
    except (ImportError, ValueError, OSError):
        pass


def main() -> None:
    _die_with_parent()
    _limit_memory()
    sys.setrecursionlimit(5000)
    proto = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # anything printed by a library goes to stderr
    from . import symbolic  # noqa: F401  (warm the heavy imports before saying ready)
    from .equivalence import Verdict, compare
    from .numbers import Rules

    proto.write(b"ready\n")
    for line in sys.stdin.buffer:
        try:
            job = json.loads(line)
            _cpu_limit(float(job.get("timeout") or 60))
            rules = Rules(**job.get("rules", {}))
            verdict = compare(job["pred"], job["gold"], job.get("task", "math"), symbolic=True, rules=rules)
            assert verdict is not None
        except MemoryError:
            verdict = Verdict(False, f"memory limit ({MEMORY_MB} MB) exceeded")
        except RecursionError:
            verdict = Verdict(False, "expression nested too deeply")
        except Exception as exc:  # a grader bug must not take the pool down; report it as the reason
            verdict = Verdict(False, f"grader error: {type(exc).__name__}: {str(exc)[:160]}")
        proto.write(json.dumps({"equal": verdict.equal, "reason": verdict.reason}).encode() + b"\n")


if __name__ == "__main__":
    main()
