"""Benchmark 7 (issue 14): the same uneven workload in static and in queue mode on 8 cores.

200 jobs, each a ``sleep`` drawn from a seeded Pareto distribution, under a vCPU quota of 8 on the
local cloud, 2-core c5.large instances in both modes. Queue mode: one session, ``max_instances =
4``. Static mode (the paper's rule, one job per core): 8 jobs at a time fit the quota, so the
workload runs as 25 sessions of 8 jobs one after the other, each on 4 instances, the next started
once the last instance of the one before is terminated. Both modes go through the real client
(``session.plan_start``/``start``, the monitor, ``cleanup``) and the real agents (logged by
agent_probe.py). Measured: makespan, paid instance-seconds, busy core-seconds, utilisation.

``python queue_vs_static.py`` (about 5 min; adds its figures to results.json);
``python queue_vs_static.py --jobs 16 --scale 0.2 --no-save`` for a quick look.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    RESULTS_JSON,
    machine_info,
    median,
    private_local_cloud,
    read_call_log,
    update_results,
)

INSTANCE_TYPE = "c5.large"  # 2 vCPUs, as in the 200-job test
CORES_PER_INSTANCE = 2
CORES = 8  # the vCPU quota: both modes get 8 cores of paid capacity
N_JOBS = 200
SEED = 14
ALPHA = 1.5  # Pareto shape: heavy tail, finite mean
SHORTEST_S = 1.0  # Pareto scale: the shortest job
LONGEST_S = 20.0  # cap
TARGET = 0.90  # queue mode's utilisation at 200 jobs on 8 cores (issue 14)
POLL_S = 0.25  # the benchmark's client polls this often for "every instance terminated"
BUCKET = "benchqueue"
JOB_SH = """#!/bin/sh
seconds="$(sed -n "${AWSAC_JOB_NUMBER}p" "$AWSACworkingDir/durations.txt")"
echo "job $AWSAC_JOB_NUMBER: sleep $seconds"
sleep "$seconds"
"""
MODES = ("static", "queue")


def job_lengths(n: int = N_JOBS, seed: int = SEED, scale: float = 1.0) -> list[float]:
    """``n`` job lengths in seconds: Pareto(ALPHA) from SHORTEST_S, capped at LONGEST_S, times
    ``scale`` (a smaller scale only for quick looks)."""
    rng = random.Random(seed)
    return [
        round(scale * min(LONGEST_S, SHORTEST_S * rng.paretovariate(ALPHA)), 2) for _ in range(n)
    ]


def job_dir(dest: Path, image_id: str, durations: list[float], queue: bool) -> Path:
    """A session directory: jobs.cfg of ``len(durations)`` jobs, each sleeping its line's time."""
    dest.mkdir(parents=True)
    (dest / "job.sh").write_text(JOB_SH)
    (dest / "durations.txt").write_text("".join(f"{d:g}\n" for d in durations))
    (dest / "jobs.cfg").write_text(f"-;job.sh;{len(durations)}\n")
    extra = (
        f'assignment = "queue"\nmax_instances = {CORES // CORES_PER_INSTANCE}\n' if queue else ""
    )
    (dest / "session.toml").write_text(
        f'shortdescr = "{"queue" if queue else "static"}"\ninstance_type = "{INSTANCE_TYPE}"\n'
        f'image_id = "{image_id}"\nbucket = "{BUCKET}"\njobs_cfg = "jobs.cfg"\n'
        f'status_store = "simpledb"\n{extra}\n[cloud]\nlocal = true\n'
    )
    return dest / "session.toml"


async def one_session(
    cloud: Any, info: Any, state: Path, durations: list[float], queue: bool, marks: dict[str, float]
) -> dict[str, Any]:
    """Start one session, wait until every instance is terminated, read its job records."""
    from awsac_tui import session
    from awsac_tui.monitor import Monitor

    call_log = state / "agent-calls.jsonl"
    call_log.write_text("")
    tmp = Path(tempfile.mkdtemp(prefix="awsac-bench-queue-"))
    try:
        spec = job_dir(tmp / "job", info.image_id, durations, queue)
        t_start = time.time()
        plan = await session.plan_start(spec, cloud=cloud)
        record = await session.start(plan, cloud)
        launched = marks["run_answered"]
        mon = Monitor(record, cloud, boot_timeout=120, write_lost=False)
        deadline = time.monotonic() + 120 + 4 * sum(durations)
        while True:
            snap = await mon.refresh()
            if len(snap.instances) >= record.n_instances and all(
                i.state == "terminated" for i in snap.instances
            ):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{record.session_id} did not end: {snap}")
            await asyncio.sleep(POLL_S)
        t_seen = time.time()
        snap = await mon.refresh()
        await session.cleanup(record, cloud=cloud, force=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    entries = read_call_log(call_log)
    ends = sorted(e["t"] for e in entries if e["k"] == "terminate" and e.get("role") == "worker")
    if len(ends) != record.n_instances:
        raise RuntimeError(
            f"{record.session_id}: {len(ends)} TerminateInstances calls of agents for "
            f"{record.n_instances} instances"
        )
    jobs = [
        {
            "jobnr": j.jobnr,
            "status": j.status,
            "attempt": j.attempt,
            "instance": j.instance_id,
            "run_s": (j.runendtime - j.runstarttime).total_seconds()
            if j.runstarttime and j.runendtime
            else None,
        }
        for j in snap.jobs
    ]
    return {
        "session_id": record.session_id,
        "instances": record.n_instances,
        "start": t_start,
        "launched": launched,
        "terminate_calls": ends,
        "client_saw_terminated": t_seen,
        "jobs": jobs,
        "phases": instance_phases(entries, launched),
    }


PHASES = (
    ("to_boot", "RunInstances answered to the boot process started (runner)"),
    ("boot_step", "boot step: IMDS, archive download and extract, worker start"),
    ("worker_to_first_job", "worker start to its first job record (plan, store, claim)"),
    ("working", "first job record to the agent's last job record"),
    ("teardown", "last job record to the agent's TerminateInstances"),
)


def instance_phases(entries: list[dict[str, Any]], launched: float) -> dict[str, list[float]]:
    """Per instance (one autorun and one worker process each), where its lifetime went."""
    autoruns = sorted(e["t"] for e in entries if e["k"] == "start" and e["role"] == "autorun")
    workers = sorted(
        (e["t"], e["pid"]) for e in entries if e["k"] == "start" and e["role"] == "worker"
    )
    out: dict[str, list[float]] = {name: [] for name, _ in PHASES}
    for (t_worker, pid), t_boot in zip(workers, autoruns, strict=False):
        mine = [e for e in entries if e.get("pid") == pid]
        # job records only (a static agent merges pending -> running into its first write)
        status = [e["t"] for e in mine if e["k"] == "status" and e.get("job") is not None]
        term = [e["t"] for e in mine if e["k"] == "terminate"]
        first_running = min(status, default=None)
        if not status or not term or first_running is None:
            continue
        out["to_boot"].append(t_boot - launched)
        out["boot_step"].append(t_worker - t_boot)
        out["worker_to_first_job"].append(first_running - t_worker)
        out["working"].append(max(status) - first_running)
        out["teardown"].append(term[0] - max(status))
    return out


def figures(mode: str, sessions: list[dict[str, Any]], durations: list[float]) -> dict[str, Any]:
    """Makespan, paid instance-seconds, busy core-seconds and utilisation of one mode."""
    lifetimes = [t - s["launched"] for s in sessions for t in s["terminate_calls"]]
    jobs = [j for s in sessions for j in s["jobs"]]
    finished = [j for j in jobs if j["status"] == "finished"]
    busy = sum(j["run_s"] or 0.0 for j in jobs)
    paid_core = sum(lifetimes) * CORES_PER_INSTANCE
    makespan = max(t for s in sessions for t in s["terminate_calls"]) - sessions[0]["start"]
    return {
        "mode": mode,
        "sessions": len(sessions),
        "instances": sum(s["instances"] for s in sessions),
        "jobs": len(jobs),
        "finished": len(finished),
        "attempts_over_1": sum(1 for j in jobs if j["attempt"] != 1),
        "instances_used_by_jobs": len({j["instance"] for j in jobs}),
        "makespan_s": makespan,
        "paid_instance_s": sum(lifetimes),
        "paid_core_s": paid_core,
        "busy_core_s": busy,
        "work_core_s": sum(durations),
        "utilisation": busy / paid_core,
        "work_utilisation": sum(durations) / paid_core,
        "instance_lifetime_s": {
            "min": min(lifetimes),
            "median": sorted(lifetimes)[len(lifetimes) // 2],
            "max": max(lifetimes),
        },
        # what EC2 would bill for the same lifetimes: Linux on-demand per second with a 60 s
        # minimum per instance (since 2017), and per started instance-hour (the paper's 2008)
        "billed_instance_s": sum(max(60.0, math.ceil(x)) for x in lifetimes),
        "billed_instance_h_2008": sum(math.ceil(x / 3600) for x in lifetimes),
        "ideal_makespan_s": max(sum(durations) / CORES, max(durations)),
        "phases_median_s": {
            name: median([x for s in sessions for x in s["phases"][name]]) for name, _ in PHASES
        },
    }


async def run_modes(
    info: Any, state: Path, durations: list[float], modes: tuple[str, ...] = MODES
) -> dict[str, Any]:
    from awsac_tui.cloud import Cloud
    from awsac_tui.local import service
    from awsac_tui.spec import CloudProfile

    service.configure_ec2(info, vcpu_quota=CORES)
    marks: dict[str, float] = {}
    out: dict[str, Any] = {}
    try:
        async with Cloud(CloudProfile(local=True)) as cloud:
            ec2 = await cloud.client("ec2")

            def answered(**kw: Any) -> None:  # the instances exist (boot delay 0: at once)
                marks["run_answered"] = time.time()

            ec2.meta.events.register("after-call.ec2.RunInstances", answered)
            for mode in modes:
                t0 = time.monotonic()
                if mode == "queue":
                    sessions = [await one_session(cloud, info, state, durations, True, marks)]
                else:  # static: the quota's 8 cores take 8 jobs (one per core) at a time
                    sessions = []
                    for first in range(0, len(durations), CORES):
                        wave = durations[first : first + CORES]
                        sessions.append(await one_session(cloud, info, state, wave, False, marks))
                out[mode] = {
                    **figures(mode, sessions, durations),
                    "wall_s": time.monotonic() - t0,
                    "sessions_detail": [
                        {k: v for k, v in s.items() if k != "jobs"} for s in sessions
                    ],
                }
                print(line(out[mode]), flush=True)
                print("  per instance (median):", out[mode]["phases_median_s"], flush=True)
    finally:
        service.configure_ec2(info, vcpu_quota=None)
    return out


def run(
    info: Any,
    state: Path,
    n_jobs: int = N_JOBS,
    scale: float = 1.0,
    seed: int = SEED,
    modes: tuple[str, ...] = MODES,
) -> dict[str, Any]:
    """Both modes on the same workload, in one local cloud, one after the other."""
    durations = job_lengths(n_jobs, seed, scale)
    load = machine_info()["load average at start"]
    t0 = time.time()
    figs = asyncio.run(run_modes(info, state, durations, modes))
    ordered = sorted(durations)
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t0)),
        "load_at_start": load,
        "load_at_end": machine_info()["load average at start"],
        "n_jobs": n_jobs,
        "cores": CORES,
        "instance_type": INSTANCE_TYPE,
        "distribution": {
            "kind": f"Pareto(alpha={ALPHA}) from {SHORTEST_S:g} s, capped at {LONGEST_S:g} s",
            "seed": seed,
            "scale": scale,
            "total_s": sum(durations),
            "mean_s": sum(durations) / len(durations),
            "median_s": ordered[len(ordered) // 2],
            "p90_s": ordered[int(0.9 * (len(ordered) - 1))],
            "max_s": ordered[-1],
        },
        "boot_delay_s": 0.0,
        "target": TARGET,
        **figs,
    }


def line(r: dict[str, Any]) -> str:
    return (
        f"{r['mode']:6s}: makespan {r['makespan_s']:6.1f} s, {r['instances']} instances in "
        f"{r['sessions']} session(s), paid {r['paid_instance_s']:7.1f} instance-s "
        f"({r['paid_core_s']:.0f} core-s), busy {r['busy_core_s']:.0f} core-s, utilisation "
        f"{100 * r['utilisation']:.1f} % (work {100 * r['work_utilisation']:.1f} %), "
        f"{r['finished']}/{r['jobs']} finished"
    )


ROWS = (
    ("makespan", lambda r: f"{r['makespan_s']:.1f} s"),
    ("sessions x instances", lambda r: f"{r['sessions']} x {r['instances'] // r['sessions']}"),
    (
        "paid instance-seconds (launch to TerminateInstances)",
        lambda r: f"{r['paid_instance_s']:.0f}",
    ),
    ("paid core-seconds", lambda r: f"{r['paid_core_s']:.0f}"),
    ("busy core-seconds (job records, whole seconds)", lambda r: f"{r['busy_core_s']:.0f}"),
    ("**utilisation** (busy / paid core-seconds)", lambda r: f"**{100 * r['utilisation']:.1f} %**"),
    ("the drawn work / paid core-seconds", lambda r: f"{100 * r['work_utilisation']:.1f} %"),
    (
        "instance lifetime min / median / max",
        lambda r: "{min:.1f} / {median:.1f} / {max:.1f} s".format(**r["instance_lifetime_s"]),
    ),
    (
        "EC2 bill, per second with 60 s minimum",
        lambda r: f"{r['billed_instance_s']:.0f} instance-s",
    ),
    ("EC2 bill, per started hour (2008)", lambda r: f"{r['billed_instance_h_2008']} instance-h"),
    (
        "jobs finished (attempts > 1)",
        lambda r: f"{r['finished']}/{r['jobs']} ({r['attempts_over_1']})",
    ),
)


def table(res: dict[str, Any]) -> list[str]:
    """The comparison as a Markdown table (static beside queue)."""
    out = ["| | static (paper's rule) | queue |", "|---|---:|---:|"]
    for label, cell in ROWS:
        out.append(f"| {label} | {cell(res['static'])} | {cell(res['queue'])} |")
    return out


def verdict(res: dict[str, Any]) -> str:
    u = res["queue"]["utilisation"]
    met = (
        "**met**" if u >= res["target"] else f"**missed** by {100 * (res['target'] - u):.1f} points"
    )
    return f"Target: queue mode uses >= {100 * res['target']:.0f} % of its paid core-seconds: {met} ({100 * u:.1f} %)."


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--jobs", type=int, default=N_JOBS)
    p.add_argument("--scale", type=float, default=1.0, help="job lengths times this")
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--modes", default=",".join(MODES), help="static,queue (in this order)")
    p.add_argument("--no-save", action="store_true", help="print only, leave results.json")
    args = p.parse_args()
    with private_local_cloud(boot_delay=0.0) as (info, state):
        res = run(info, state, args.jobs, args.scale, args.seed, tuple(args.modes.split(",")))
    if all(m in res for m in MODES):
        print("\n".join(table(res)))
        print(verdict(res))
    print(f"load average: {res['load_at_start']} at the start, {res['load_at_end']} at the end")
    full = args.jobs == N_JOBS and args.scale == 1.0 and all(m in res for m in MODES)
    if not args.no_save and full and RESULTS_JSON.exists():
        update_results(queue_vs_static=res)
        print(f"added to {RESULTS_JSON}; `python run_all.py --render` rewrites RESULTS.md")


if __name__ == "__main__":
    main()
