"""Benchmark 1: end-to-end overhead of the eventgen shape (4 jobs, 2 x c5.large) with instant jobs.

Time from ``plan_start`` to results downloaded, split into phases from client and agent timestamps.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import (
    EXAMPLE,
    PROFILE_ENV,
    CallCounter,
    counted_cloud_clients,
    median,
    private_local_cloud,
    read_call_log,
)

PHASES = (
    ("validate+upload", "plan_start, archive, bucket, upload, image check, status domain reset"),
    ("RunInstances", "the RunInstances call"),
    ("boot to first status", "boot process, IMDS, archive download+extract, worker start"),
    ("volumes", "first 'pending' to first 'running': CreateVolume, attach, waiters, mount"),
    ("run", "first 'running' to last 'waitforsave' (jobs exit at once)"),
    ("save", "last 'waitforsave' to last 'finished': upload logs, status writes"),
    ("tear down", "last 'finished' to last TerminateInstances: detach/delete volumes, own log"),
    ("client notices", "until the client's poll (every 0.5 s) sees every instance terminated"),
    ("download", "session.results (listing + GETs)"),
)
QUICK_JOB = '#!/bin/sh\necho "job $AWSAC_JOB_NUMBER: exits at once"\n'
POLL_S = 0.5


@dataclass(frozen=True)
class E2ERun:
    phases: dict[str, float]
    total: float
    agent_calls: dict[str, int]
    client_calls: int
    statuses: tuple[str, ...]
    boot: dict[str, float]  # the 'boot to first status' phase, split (first instance to get there)


def job_dir(dest: Path, image_id: str, snapshot_id: str) -> Path:
    """The eventgen job directory with both scripts replaced by one that exits at once."""
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("release", "session.ini"))
    (dest / "quick.sh").write_text(QUICK_JOB)
    (dest / "jobs.cfg").write_text(f"{snapshot_id};quick.sh;4\n")
    toml = dest / "session.toml"
    toml.write_text(toml.read_text().replace("ami-00000000", image_id))
    return dest / "session.toml"


async def one_run(info: Any, state: Path, snapshot_id: str, *, profile: bool = False) -> E2ERun:
    from awsac_tui import session
    from awsac_tui.cloud import Cloud
    from awsac_tui.monitor import Monitor
    from awsac_tui.spec import CloudProfile
    from awsac_tui.views import all_terminal

    call_log = state / "agent-calls.jsonl"
    call_log.write_text("")
    prof_dir = Path(__import__("os").environ[PROFILE_ENV])
    client_prof = None
    if profile:
        prof_dir.mkdir(exist_ok=True)
        from pyinstrument import Profiler

        client_prof = Profiler(interval=0.001, async_mode="enabled")
    marks: dict[str, float] = {}
    counter = CallCounter()
    with tempfile.TemporaryDirectory(prefix="awsac-bench-e2e-") as tmp:
        spec_path = job_dir(Path(tmp) / "eventgen", info.image_id, snapshot_id)
        async with Cloud(CloudProfile(local=True)) as cloud:
            await counted_cloud_clients(cloud, counter)
            ec2 = await cloud.client("ec2")

            def mark(name: str) -> Any:
                def hook(**kw: Any) -> None:  # a before-call hook must return None
                    marks.setdefault(name, time.time())

                return hook

            ec2.meta.events.register("before-call.ec2.RunInstances", mark("b1"))
            ec2.meta.events.register("after-call.ec2.RunInstances", mark("b2"))
            if client_prof:
                client_prof.start()
            t0 = time.time()
            plan = await session.plan_start(spec_path, cloud=cloud)
            record = await session.start(plan, cloud)
            mon = Monitor(record, cloud, boot_timeout=120, write_lost=False)
            deadline = time.monotonic() + 180
            while True:
                snap = await mon.refresh()
                if (
                    all_terminal(snap)
                    and snap.instances
                    and all(i.state == "terminated" for i in snap.instances)
                ):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"e2e session {record.session_id} did not end: {snap}")
                await asyncio.sleep(POLL_S)
            marks["b8"] = time.time()
            out = Path(tmp) / "results"
            out.mkdir()
            got = await session.results(record, out, cloud=cloud)
            marks["b9"] = time.time()
            if client_prof:
                client_prof.stop()
                (prof_dir / "client.txt").write_text(
                    client_prof.output_text(unicode=False, color=False)
                )
            client_calls = counter.total
            await session.cleanup(record, cloud=cloud, force=True, kill_running=True)
    entries = read_call_log(call_log)
    status = [e for e in entries if e["k"] == "status"]
    calls = [e for e in entries if e["k"] == "call"]

    # the client pre-creates `pending` records and the agent merges writes (pending -> running,
    # saving -> finished): a status never written takes the nearest written one's time
    def first(st: str) -> float:
        times = [e["t"] for e in status if e["status"] == st]
        return min(times) if times else min(e["t"] for e in status)

    def last(st: str) -> float:
        times = [e["t"] for e in status if e["status"] == st]
        return max(times) if times else max(e["t"] for e in status)

    b = [
        t0,
        marks["b1"],
        marks["b2"],
        first("pending"),
        first("running"),
        last("waitforsave"),
        last("finished"),
        max(e["t"] for e in entries if e["k"] == "terminate"),
        marks["b8"],
        marks["b9"],
    ]
    phases = {name: b[i + 1] - b[i] for i, (name, _) in enumerate(PHASES)}
    starts = {
        r: min(e["t"] for e in entries if e["k"] == "start" and e["role"] == r)
        for r in ("autorun", "worker")
    }
    boot = {
        "RunInstances answered to boot process started (runner, exec, Python start)": starts[
            "autorun"
        ]
        - b[2],
        "boot step (imports, IMDS, S3 client, archive download+extract, sh)": starts["worker"]
        - starts["autorun"],
        "worker start to first status (imports, IMDS, clients, CreateDomain)": b[3]
        - starts["worker"],
    }
    agent_calls: dict[str, int] = {}
    for e in calls:
        agent_calls[e["op"]] = agent_calls.get(e["op"], 0) + 1
    assert len(got) >= 4, f"expected at least the 4 job logs, got {[d.key for d in got]}"
    return E2ERun(
        phases,
        b[-1] - b[0],
        agent_calls,
        client_calls,
        tuple(sorted({j.status for j in snap.jobs})),
        boot,
    )


def make_snapshot() -> str:
    from awsac_tui.local import service

    return service.make_snapshot(EXAMPLE / "release", "bench: eventgen release")


def run(info: Any, state: Path, runs: int = 3, profile: bool = True) -> dict[str, Any]:
    """``runs`` timed runs (+ one profiled run, not counted); medians per phase."""
    snapshot_id = make_snapshot()
    results = [asyncio.run(one_run(info, state, snapshot_id)) for _ in range(runs)]
    profiles: dict[str, str] = {}
    if profile:
        asyncio.run(one_run(info, state, snapshot_id, profile=True))
        prof_dir = state / "agent-profiles"
        for p in sorted(prof_dir.glob("*.txt")):
            profiles[p.stem] = p.read_text()
        shutil.rmtree(prof_dir, ignore_errors=True)
    return {
        "runs": results,
        "phases": {name: median([r.phases[name] for r in results]) for name, _ in PHASES},
        "total": median([r.total for r in results]),
        "totals": [r.total for r in results],
        "boot": {k: median([r.boot[k] for r in results]) for k in results[0].boot},
        "profiles": profiles,
    }


def main() -> None:
    with private_local_cloud(boot_delay=0.0) as (info, state):
        res = run(info, state, runs=2, profile=False)
    for name, _ in PHASES:
        print(f"{name:22s} {res['phases'][name]:7.2f} s")
    print(f"{'total':22s} {res['total']:7.2f} s   runs: {[round(t, 2) for t in res['totals']]}")
    print("agent calls (last run):", res["runs"][-1].agent_calls)
    print("boot:", res["boot"])


if __name__ == "__main__":
    main()
