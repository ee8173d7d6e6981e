"""Benchmark: the agent's calls while jobs run long enough to poll (issue 20), with the agent's
default intervals (control read 5 s, heartbeat 30 s, status coalescing 2 s).

Two sessions on the local cloud, started by the client as a user would (pending records
pre-created), every agent call logged by agent_probe.py:

- static: 16 jobs of ``sleep JOB_S`` on 2 x c5.2xlarge (8 vCPUs), job 1's live log watched by a
  "viewer" (the watch flag refreshed every 20 s) for the whole run;
- queue: 32 jobs of ``sleep JOB_S / 2`` on the same 2 instances (each core runs 2 jobs).

Prints calls per operation, per instance-minute and per job; bench/agent_calls.md scales them to
10,000 jobs on 1,000 instances. ``python agent_polling.py [JOB_S]`` (default 60).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from common import private_local_cloud, read_call_log

INSTANCE_TYPE = "c5.2xlarge"  # 8 vCPUs
BUCKET = "benchpolling"


def job_dir(dest: Path, image_id: str, n_jobs: int, seconds: float, queue: bool) -> Path:
    dest.mkdir(parents=True)
    (dest / "job.sh").write_text(f"#!/bin/sh\necho start\nsleep {seconds:g}\necho end\n")
    (dest / "jobs.cfg").write_text(f"-;job.sh;{n_jobs}\n")
    extra = 'assignment = "queue"\nmax_instances = 2\n' if queue else ""
    (dest / "session.toml").write_text(
        f'shortdescr = "poll"\ninstance_type = "{INSTANCE_TYPE}"\nimage_id = "{image_id}"\n'
        f'bucket = "{BUCKET}"\njobs_cfg = "jobs.cfg"\nstatus_store = "simpledb"\n{extra}\n'
        "[cloud]\nlocal = true\n"
    )
    return dest / "session.toml"


async def one_session(info: Any, state: Path, queue: bool, job_s: float) -> dict[str, Any]:
    from awsac_agent import s3layout
    from awsac_agent.status import WATCH_REFRESH_SECONDS, watch_body

    from awsac_tui import session
    from awsac_tui.cloud import Cloud
    from awsac_tui.spec import CloudProfile

    call_log = state / "agent-calls.jsonl"
    call_log.write_text("")
    n_jobs = 32 if queue else 16
    seconds = job_s / 2 if queue else job_s
    tmp = Path(tempfile.mkdtemp(prefix="awsac-bench-poll-"))
    try:
        async with Cloud(CloudProfile(local=True)) as cloud:
            spec = job_dir(tmp / "job", info.image_id, n_jobs, seconds, queue)
            plan = await session.plan_start(spec, cloud=cloud)
            record = await session.start(plan, cloud)
            s3 = await cloud.client("s3")
            ec2 = await cloud.client("ec2")
            t0 = time.monotonic()
            last_watch = 0.0
            while True:
                now = time.monotonic()
                if not queue and now - last_watch >= WATCH_REFRESH_SECONDS:
                    await s3.put_object(
                        Bucket=BUCKET,
                        Key=s3layout.watch_key(record.session_id, 1),
                        Body=watch_body().encode(),
                    )
                    last_watch = now
                resp = await ec2.describe_instances(
                    Filters=[{"Name": "tag:awsac:session", "Values": [record.session_id]}]
                )
                states = [i["State"]["Name"] for r in resp["Reservations"] for i in r["Instances"]]
                if states and all(s == "terminated" for s in states):
                    break
                assert now - t0 < job_s * 4 + 240, f"{record.session_id} did not end"
                await asyncio.sleep(1.0)
            wall = time.monotonic() - t0
            await session.cleanup(record, cloud=cloud, force=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    entries = read_call_log(call_log)
    calls: Counter = Counter(
        e["op"] for e in entries if e["k"] == "call" and e.get("role") == "worker"
    )
    starts = [e["t"] for e in entries if e["k"] == "start" and e.get("role") == "worker"]
    ends = [e["t"] for e in entries if e["k"] == "terminate" and e.get("role") == "worker"]
    instance_minutes = sum(ends) / 60 - sum(starts) / 60 if len(ends) == len(starts) else wall / 30
    writes = Counter(e["job"] for e in entries if e["k"] == "status")
    statuses = Counter(e["status"] for e in entries if e["k"] == "status")
    return {
        "variant": "queue" if queue else "static",
        "jobs": n_jobs,
        "job_seconds": seconds,
        "instances": len(starts),
        "wall_s": round(wall, 1),
        "instance_minutes": round(instance_minutes, 2),
        "calls": dict(sorted(calls.items())),
        "calls_per_instance_minute": {
            op: round(n / instance_minutes, 2) for op, n in sorted(calls.items())
        },
        "calls_per_job": {op: round(n / n_jobs, 2) for op, n in sorted(calls.items())},
        "status_records_per_job": round(sum(writes.values()) / n_jobs, 2),
        "status_records": dict(statuses),
    }


def main() -> None:
    job_s = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    out = []
    with private_local_cloud(boot_delay=0.0) as (info, state):
        for queue in (False, True):
            out.append(asyncio.run(one_session(info, state, queue, job_s)))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
