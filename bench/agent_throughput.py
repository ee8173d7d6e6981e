"""Benchmark 5: agent throughput, 64 jobs of ``true`` through run+save+status, and calls per job.

Counted in the agent's own processes by agent_probe.py (botocore hooks, one JSON line per call).
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import PROFILE_ENV, median, private_local_cloud, read_call_log, update_results

N_JOBS = 64
INSTANCE_TYPE = "c5.4xlarge"  # 16 vCPUs


@dataclass(frozen=True)
class ThroughputRun:
    variant: str
    n_instances: int
    window_s: float  # first 'running' write to last 'finished' write
    first_pending_to_last_finished_s: float
    calls: dict[str, int]
    statuses: tuple[str, ...]

    @property
    def jobs_per_s(self) -> float:
        return N_JOBS / self.window_s

    def per_job(self, prefix: str) -> float:
        return sum(n for op, n in self.calls.items() if op.startswith(prefix)) / N_JOBS


def job_dir(dest: Path, image_id: str) -> Path:
    dest.mkdir(parents=True)
    (dest / "true.sh").write_text("#!/bin/sh\ntrue\n")
    (dest / "jobs.cfg").write_text(f"-;true.sh;{N_JOBS}\n")
    (dest / "session.toml").write_text(
        f'shortdescr = "true64"\ninstance_type = "{INSTANCE_TYPE}"\nimage_id = "{image_id}"\n'
        'bucket = "benchsessions"\njobs_cfg = "jobs.cfg"\nstatus_store = "simpledb"\n\n'
        "[cloud]\nlocal = true\n"
    )
    return dest / "session.toml"


async def one_run(info: Any, state: Path, one_agent: bool, profile: bool = False) -> ThroughputRun:
    """``one_agent``: one instance whose user-data says 64 cores, so one agent runs all 64 jobs;
    otherwise the standard assignment: 4 instances of 16 cores, 16 jobs each."""
    from awsac_agent.userdata import UserData, build_userdata

    from awsac_tui import session
    from awsac_tui.cloud import Cloud
    from awsac_tui.monitor import Monitor
    from awsac_tui.spec import CloudProfile
    from awsac_tui.views import all_terminal

    call_log = state / "agent-calls.jsonl"
    call_log.write_text("")
    if profile:
        Path(__import__("os").environ[PROFILE_ENV]).mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="awsac-bench-tp-"))
    try:
        async with Cloud(CloudProfile(local=True)) as cloud:
            plan = await session.plan_start(job_dir(tmp / "job", info.image_id), cloud=cloud)
            assert plan.vcpus == 16, plan.vcpus
            if one_agent:
                ud = build_userdata(
                    UserData(plan.session_id, plan.spec.bucket, plan.archive_name, N_JOBS, {})
                )
                plan = dataclasses.replace(
                    plan, cores_per_instance=N_JOBS, n_instances=1, unused_cores=0, userdata=ud
                )
            record = await session.start(plan, cloud)
            mon = Monitor(record, cloud, boot_timeout=300, write_lost=False)
            deadline = time.monotonic() + 300
            while True:
                snap = await mon.refresh()
                if all_terminal(snap) and all(i.state == "terminated" for i in snap.instances):
                    break
                assert time.monotonic() < deadline, f"{record.session_id} did not end"
                await asyncio.sleep(0.5)
            await session.cleanup(record, cloud=cloud, force=True, kill_running=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    entries = read_call_log(call_log)
    status = [e for e in entries if e["k"] == "status"]
    calls: dict[str, int] = {}
    for e in entries:
        if e["k"] == "call" and e.get("role") == "worker":
            calls[e["op"]] = calls.get(e["op"], 0) + 1
    running = [e["t"] for e in status if e["status"] == "running"]
    finished = [e["t"] for e in status if e["status"] == "finished"]
    # Jobs that end within the status writer's coalescing window (2 s) get only their end
    # record, so there may be no running record: then the window opens at the worker's start
    # (its process start, imports included). No pending record is written for a job started at
    # once: then the first running record (or the worker's start) stands for it.
    worker_start = [e["t"] for e in entries if e["k"] == "start" and e.get("role") == "worker"]
    running = running or worker_start
    first = [e["t"] for e in status if e["status"] == "pending"] or running
    assert len(finished) == N_JOBS, f"{len(finished)} of {N_JOBS} jobs finished"
    return ThroughputRun(
        "one agent, 64 jobs" if one_agent else "4 agents x 16 jobs",
        plan.n_instances,
        max(finished) - min(running),
        max(finished) - min(first),
        calls,
        tuple(sorted({j.status for j in snap.jobs})),
    )


def run(info: Any, state: Path, runs: int = 2, profile: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"runs": [], "profiles": {}}
    for one_agent in (True, False):
        for _ in range(runs):
            out["runs"].append(asyncio.run(one_run(info, state, one_agent)))
    if profile:
        asyncio.run(one_run(info, state, True, profile=True))
        prof_dir = state / "agent-profiles"
        for p in sorted(prof_dir.glob("worker-*.txt")):
            out["profiles"][p.stem] = p.read_text()
        shutil.rmtree(prof_dir, ignore_errors=True)
    for variant in ("one agent, 64 jobs", "4 agents x 16 jobs"):
        rs = [r for r in out["runs"] if r.variant == variant]
        out[variant] = {
            "jobs_per_s": median([r.jobs_per_s for r in rs]),
            "window_s": median([r.window_s for r in rs]),
            "pending_to_finished_s": median([r.first_pending_to_last_finished_s for r in rs]),
            "s3_per_job": median([r.per_job("s3:") for r in rs]),
            "sdb_per_job": median([r.per_job("sdb:") for r in rs]),
            "ec2_per_job": median([r.per_job("ec2:") for r in rs]),
            "calls": rs[-1].calls,
        }
    return out


def main() -> None:
    """``python agent_throughput.py [--runs=N] [--save]``: ``--save`` replaces results.json's
    section 5 (with its profile; RESULTS.md then by ``run_all.py --render``)."""
    import sys

    save = "--save" in sys.argv
    runs = next((int(a.split("=", 1)[1]) for a in sys.argv if a.startswith("--runs=")), 1)
    with private_local_cloud(boot_delay=0.0) as (info, state):
        res = run(info, state, runs=runs, profile=save)
    for variant in ("one agent, 64 jobs", "4 agents x 16 jobs"):
        print(variant, res[variant])
    if save:
        import run_all

        date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        path = update_results(throughput=run_all._plain(res), throughput_date=date)
        print(f"saved to {path}")


if __name__ == "__main__":
    main()
