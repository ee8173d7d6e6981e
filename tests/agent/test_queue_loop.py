"""The worker's job loop in queue mode (issue 14's benchmark): a core freed by an ended job is
claimed in the same pass of the loop, and the claimed job starts as soon as the claim round
comes back, not a tick or two later. The store, the claims and the job processes are fakes:
this is about the loop's pacing alone (the real thing is tests/agent/test_queue.py)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from awsac_agent.agentlog import AgentLog
from awsac_agent.processjobs import ClaimResult, Settings, Worker

TICK = 1.0  # long, so that a pass that waits out a tick shows in the wall time


class _Ended:
    """A job process that has already ended."""

    returncode = 0

    def poll(self) -> int:
        return 0


def _worker(tmp_path: Path, n_jobs: int) -> tuple[Worker, list[tuple[str, int, float]]]:
    w = Worker(Settings(work_dir=tmp_path, session_dir=tmp_path, tick_seconds=TICK), AgentLog())
    w.queue_mode = True
    w.ud = SimpleNamespace(cores_per_instance=1, get=lambda key, default=None: None)  # type: ignore[assignment]
    events: list[tuple[str, int, float]] = []
    left = list(range(1, n_jobs + 1))
    lock = threading.Lock()

    def claim_round(wanted: int) -> ClaimResult:
        time.sleep(0.05)  # a store round trip: the loop is waiting for it when it comes back
        with lock:
            if not left:
                return ClaimResult([], True)
            return ClaimResult([SimpleNamespace(jobnr=left.pop(0))], False)  # type: ignore[list-item]

    def begin_claimed(rec: Any) -> None:
        events.append(("start", rec.jobnr, time.monotonic()))
        w.running[rec.jobnr] = SimpleNamespace(proc=_Ended(), job=SimpleNamespace(jobnr=rec.jobnr))  # type: ignore[assignment]

    def job_ended(rj: Any) -> None:
        events.append(("end", rj.job.jobnr, time.monotonic()))

    w.claim_round = claim_round  # type: ignore[method-assign]
    w.begin_claimed = begin_claimed  # type: ignore[method-assign]
    w.job_ended = job_ended  # type: ignore[method-assign]
    w.check_controls = lambda static_queue: None  # type: ignore[method-assign]
    return w, events


def test_a_freed_core_runs_its_next_job_without_waiting_out_ticks(tmp_path: Path) -> None:
    n_jobs = 4
    w, events = _worker(tmp_path, n_jobs)
    t0 = time.monotonic()
    try:
        w.run_jobs()
    finally:
        w._pool.shutdown(wait=True)
    elapsed = time.monotonic() - t0
    assert [e[:2] for e in events if e[0] == "start"] == [
        ("start", n) for n in range(1, n_jobs + 1)
    ]
    assert len([e for e in events if e[0] == "end"]) == n_jobs
    # Each job's end is seen one tick after its start (the process is polled once a tick); the
    # next job must start within that same pass (claim sent at once, its answer taken as it
    # arrives). The loop before this fix spent three ticks per job: ended job seen after the
    # claims, a tick, the claim sent, a tick, its answer taken.
    gaps = [
        start[2] - end[2]
        for end, start in zip(
            [e for e in events if e[0] == "end"],
            [e for e in events if e[0] == "start"][1:],
            strict=False,
        )
    ]
    assert max(gaps) < TICK / 2, gaps
    assert elapsed < (n_jobs + 1.5) * TICK, elapsed
