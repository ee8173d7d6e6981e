"""Benchmarks 2 and 3: one Monitor.refresh at 10 to 10,000 jobs vs a naive refresh and vs raw boto3.

Per size, on the same session and the same local cloud, interleaved in one run: the client's
incremental refresh (after 1 % of the jobs changed, written by the agent's store code), its full
refresh (``force_full``), the raw boto3 script paging as the client does (``limit 2500``) and,
up to 1,000 jobs, the raw script with SimpleDB's default page of 100 and a naive refresh.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from awsac_agent.sessionid import SESSION_TAG, session_tag_filter
from common import (
    RESULTS_JSON,
    CallCounter,
    counted_cloud_clients,
    median,
    private_local_cloud,
    probe_boot_command,
    update_results,
)

CORES = 8  # c5.2xlarge
SLEEP_JOB = "#!/bin/sh\nsleep 900\n"
EMULATED_BOOT: list[str] = []  # no process at all (NoProcessMachine): agents are emulated
CHANGED = 0.01  # the share of jobs whose record changes between two ticks
SMALL = 1000  # the naive refresh, the 100-item raw script and the cleanup only up to this size
PARALLEL = 16  # threads writing what the emulated agents write
BUCKET = "benchsessions"


@dataclass(frozen=True)
class Sample:
    wall: float
    calls: int
    bytes: int
    ops: dict[str, int]
    op_seconds: dict[str, float]


@dataclass(frozen=True)
class SizeResult:
    n_jobs: int
    n_instances: int
    real_agents: bool
    client: list[Sample]
    naive: list[Sample]
    raw: list[Sample]
    raw_limit: list[Sample]
    setup_s: float
    profile: str = ""
    full: list[Sample] = ()  # type: ignore[assignment]
    changed_per_tick: int = 0
    full_profile: str = ""
    beats: list[Sample] = ()  # type: ignore[assignment]  # the heartbeat poll, on its own timer


def job_dir(dest: Path, image_id: str, snapshot_id: str, n_jobs: int) -> Path:
    dest.mkdir(parents=True)
    (dest / "sleep.sh").write_text(SLEEP_JOB)
    (dest / "jobs.cfg").write_text(f"{snapshot_id};sleep.sh;{n_jobs}\n")
    (dest / "session.toml").write_text(
        f'shortdescr = "s{n_jobs}"\ninstance_type = "c5.2xlarge"\n'
        f'image_id = "{image_id}"\nbucket = "{BUCKET}"\njobs_cfg = "jobs.cfg"\n'
        'status_store = "simpledb"\n\n[cloud]\nlocal = true\n'
    )
    return dest / "session.toml"


def boto3_client(info: Any, service: str) -> Any:
    from awsac_tui.local import service as local_service

    return local_service.boto3_client(info, service)


def emulate_agents(info: Any, session_id: str, snapshot_id: str, n_jobs: int) -> tuple[Any, dict]:
    """What each instance's agent would have written by now, written by the agent's own code:
    one tagged volume per instance (created from the snapshot, attached), one heartbeat object
    per instance and one status record per job, status running, through
    ``awsac_agent.store.SimpleDbStore.put``."""
    from awsac_agent import assignment, s3layout
    from awsac_agent.status import HEARTBEAT_SECONDS, RUNNING, Heartbeat, JobRecord, utcnow_iso
    from awsac_agent.store import SimpleDbStore

    ec2 = boto3_client(info, "ec2")
    filt = [session_tag_filter(session_id)]
    instances = [
        i
        for page in ec2.get_paginator("describe_instances").paginate(Filters=filt)
        for r in page["Reservations"]
        for i in r["Instances"]
    ]
    by_li = {i["AmiLaunchIndex"]: i["InstanceId"] for i in instances}
    tags = [{"Key": SESSION_TAG, "Value": session_id}]

    def volume_for(iid: str) -> None:
        vol = ec2.create_volume(
            SnapshotId=snapshot_id,
            AvailabilityZone="us-east-1a",
            TagSpecifications=[{"ResourceType": "volume", "Tags": tags}],
        )["VolumeId"]
        ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")

    # as the agents do, at once: every EC2 write waits for the emulator's whole EC2 state to be
    # saved (0.4 s at 1,250 instances here), and writes that arrive together share one save
    with concurrent.futures.ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(volume_for, [iid for _li, iid in sorted(by_li.items())]))
    s3 = boto3_client(info, "s3")

    def beat(item: tuple[int, str]) -> None:  # the agent's heartbeat, as Worker.beat writes it
        li, iid = item
        jobs = tuple(assignment.jobs_for_instance(li, CORES, n_jobs))
        hb = Heartbeat(iid, li, utcnow_iso(), HEARTBEAT_SECONDS, jobs=jobs, beat=1)
        key = s3layout.heartbeat_key(session_id, iid)
        s3.put_object(Bucket=BUCKET, Key=key, Body=hb.to_json().encode())

    with concurrent.futures.ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(beat, sorted(by_li.items())))
    store = SimpleDbStore(boto3_client(info, "sdb"), session_id)
    now = utcnow_iso()
    records = [
        JobRecord(
            jobnr=jobnr,
            status=RUNNING,
            instance_id=iid,
            launchindex=li,
            shellscript="sleep.sh",
            snapshot=snapshot_id,
            runstarttime=now,
        )
        for li, iid in sorted(by_li.items())
        for jobnr in assignment.jobs_for_instance(li, CORES, n_jobs)
    ]
    step = 25 * 8
    with concurrent.futures.ThreadPoolExecutor(PARALLEL) as pool:  # batches of 25, as agents write
        list(
            pool.map(store.put_many, [records[i : i + step] for i in range(0, len(records), step)])
        )
    return store, {r.jobnr: r for r in records}


class Changes:
    """Between two ticks, ``CHANGED`` of the jobs change status (running <-> waitforsave),
    written through the agent's store code (``put_many``: BatchPutAttributes, ``updated`` set)."""

    def __init__(self, store: Any, records: dict[int, Any], seed: int = 20) -> None:
        self.store = store
        self.records = records
        self.rng = random.Random(seed)
        self.count = max(1, int(len(records) * CHANGED))

    def write(self) -> None:
        from awsac_agent.status import RUNNING, WAITFORSAVE

        picked = self.rng.sample(sorted(self.records), self.count)
        new = []
        for n in picked:
            rec = self.records[n]
            rec = rec.with_(status=WAITFORSAVE if rec.status == RUNNING else RUNNING)
            self.records[n] = rec
            new.append(rec)
        self.store.put_many(new)


def end_big_session(info: Any, session_id: str, ids: list[str]) -> None:
    from awsac_agent.status import domain_name

    ec2 = boto3_client(info, "ec2")
    for i in range(0, len(ids), 500):
        ec2.terminate_instances(InstanceIds=ids[i : i + 500])
    boto3_client(info, "sdb").delete_domain(DomainName=domain_name(session_id))


async def naive_refresh(cloud: Any, session_id: str, ids: list[str], vols: list[str], n: int):
    """Describe each instance and each volume by id, read each job item one by one."""
    from awsac_agent.status import domain_name, item_name

    ec2 = await cloud.client("ec2")
    sdb = await cloud.client("sdb")
    out: dict[str, Any] = {"instances": [], "volumes": [], "jobs": []}
    for iid in ids:
        resp = await ec2.describe_instances(InstanceIds=[iid])
        out["instances"] += [i for r in resp["Reservations"] for i in r["Instances"]]
    for vid in vols:
        out["volumes"] += (await ec2.describe_volumes(VolumeIds=[vid]))["Volumes"]
    for jobnr in range(1, n + 1):
        resp = await sdb.get_attributes(
            DomainName=domain_name(session_id), ItemName=item_name(jobnr), ConsistentRead=True
        )
        out["jobs"].append(resp.get("Attributes") or [])
    return out


def raw_refresh(ec2: Any, sdb: Any, session_id: str, limit: bool = False) -> dict[str, Any]:
    """The minimal hand-written boto3 refresh: two filtered describes and one paged select."""
    filt = [session_tag_filter(session_id)]
    instances = [
        i
        for page in ec2.get_paginator("describe_instances").paginate(Filters=filt)
        for r in page["Reservations"]
        for i in r["Instances"]
    ]
    volumes = [
        v
        for page in ec2.get_paginator("describe_volumes").paginate(Filters=filt)
        for v in page["Volumes"]
    ]
    expr = f"select * from `{session_id}`" + (" limit 2500" if limit else "")
    jobs = {}
    token = None
    while True:
        kw = {"NextToken": token} if token else {}
        resp = sdb.select(SelectExpression=expr, ConsistentRead=True, **kw)
        for item in resp.get("Items") or []:
            jobs[item["Name"]] = {a["Name"]: a["Value"] for a in item["Attributes"]}
        token = resp.get("NextToken")
        if not token:
            break
    return {"instances": instances, "volumes": volumes, "jobs": jobs}


async def measure_size(
    info: Any, snapshot_id: str, n_jobs: int, repeats: int, real_agents: bool, profile: bool = False
) -> SizeResult:
    from awsac_tui import session
    from awsac_tui.cloud import Cloud
    from awsac_tui.local import service
    from awsac_tui.monitor import OVERLAP_SECONDS, Monitor
    from awsac_tui.spec import CloudProfile

    service.configure(info, boot_command=probe_boot_command() if real_agents else EMULATED_BOOT)
    t_setup = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="awsac-bench-scale-"))
    changes: Changes | None = None
    try:
        spec_path = job_dir(tmp / "job", info.image_id, snapshot_id, n_jobs)
        counter = CallCounter()
        async with Cloud(CloudProfile(local=True)) as cloud:
            plan = await session.plan_start(spec_path, cloud=cloud)
            record = await session.start(plan, cloud)
            sid = record.session_id
            # incremental unless told: full reads are asked for with force_full; heartbeats listed
            # apart from the ticks, on the poll's own timer, as the TUI's MonitorPool does
            mon = Monitor(
                record,
                cloud,
                boot_timeout=3600,
                write_lost=False,
                full_every=10**9,
                heartbeats_apart=True,
                # the emulated agents beat once: the poll's cost is measured, not their silence
                missed_beats=10**6,
            )
            deadline = time.monotonic() + 600
            while True:  # every instance running (and, with real agents, every job)
                mon.force_full()
                snap = await mon.refresh()
                up = len(snap.instances) == record.n_instances and all(
                    i.state == "running" for i in snap.instances
                )
                if up and not real_agents:
                    store, recs = await asyncio.to_thread(
                        emulate_agents, info, sid, snapshot_id, n_jobs
                    )
                    changes = Changes(store, recs)
                    written = time.monotonic()
                    break
                if up and all(j.status == "running" for j in snap.jobs):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{sid}: not all running after 600 s: {snap}")
                await asyncio.sleep(1.0)
            setup_s = time.monotonic() - t_setup
            if changes is not None:
                # steady state: the emulated agents wrote every record within seconds, and an
                # incremental read reaches OVERLAP_SECONDS behind its mark, so until then each
                # tick would read them all again (a live session's window holds only its recent
                # changes)
                await asyncio.sleep(max(0.0, OVERLAP_SECONDS + 1 - (time.monotonic() - written)))
            await counted_cloud_clients(cloud, counter)
            mon.force_full()
            snap = await mon.refresh()  # warm: clients open, connections up
            bad = [(j.jobnr, j.status) for j in snap.jobs if j.status != "running"]
            assert len(snap.jobs) == n_jobs and not bad, (len(snap.jobs), bad[:5])
            ids = [i.instance_id for i in snap.instances]
            vols = [v.volume_id for v in snap.volumes]
            ec2_raw = boto3_client(info, "ec2")
            sdb_raw = boto3_client(info, "sdb")
            raw_counter = CallCounter()
            raw_counter.install(ec2_raw)
            raw_counter.install(sdb_raw)
            raw_refresh(ec2_raw, sdb_raw, sid, True)  # warm
            await naive_refresh(cloud, sid, ids[:1], vols[:1], 1)  # warm
            kinds = ("client", "full", "naive", "raw", "raw_l", "beats")
            samples: dict[str, list[Sample]] = {k: [] for k in kinds}

            async def timed(kind: str, cnt: CallCounter, fn: Any) -> Any:
                cnt.reset()
                t0 = time.perf_counter()
                res = await fn()
                wall = time.perf_counter() - t0
                samples[kind].append(
                    Sample(
                        wall, cnt.total, cnt.bytes_received, dict(cnt.calls), dict(cnt.op_seconds)
                    )
                )
                return res

            async def change() -> None:  # 1 % of the jobs change (untimed): the next tick's work
                if changes is not None:
                    await asyncio.to_thread(changes.write)

            def check(snap: Any) -> None:
                assert len(snap.jobs) == n_jobs
                if changes is not None:
                    got = {j.jobnr: j.status for j in snap.jobs}
                    wrong = [n for n, r in changes.records.items() if got[n] != r.status]
                    assert not wrong, f"{len(wrong)} jobs not current, e.g. {wrong[:3]}"

            async def client() -> None:  # the incremental refresh after 1 % changed
                await change()
                check(await timed("client", counter, mon.refresh))
                # the heartbeat poll (every 30 s in the app, apart from the ticks)
                await timed("beats", counter, mon.poll_heartbeats)

            async def full() -> None:
                await change()
                mon.force_full()
                check(await timed("full", counter, mon.refresh))

            async def raw() -> None:
                res = await timed(
                    "raw",
                    raw_counter,
                    lambda: asyncio.to_thread(raw_refresh, ec2_raw, sdb_raw, sid),
                )
                assert len(res["jobs"]) == n_jobs, len(res["jobs"])

            async def raw_limit() -> None:
                res = await timed(
                    "raw_l",
                    raw_counter,
                    lambda: asyncio.to_thread(raw_refresh, ec2_raw, sdb_raw, sid, True),
                )
                assert len(res["jobs"]) == n_jobs, len(res["jobs"])

            async def naive() -> None:
                res = await timed(
                    "naive", counter, lambda: naive_refresh(cloud, sid, ids, vols, n_jobs)
                )
                assert len(res["jobs"]) == n_jobs

            order = [client, full, raw_limit] + ([raw, naive] if n_jobs <= SMALL else [])
            for i in range(repeats):  # interleaved, the order rotating from one round to the next
                for step in order[i % len(order) :] + order[: i % len(order)]:
                    await step()
            profile_text = full_text = ""
            if profile:
                from pyinstrument import Profiler

                for kind in ("client", "full"):
                    await change()
                    if kind == "full":
                        mon.force_full()
                    prof = Profiler(interval=0.001, async_mode="enabled")
                    prof.start()
                    await mon.refresh()
                    prof.stop()
                    text = prof.output_text(unicode=False, color=False)
                    if kind == "client":
                        profile_text = text
                    else:
                        full_text = text
            if n_jobs <= SMALL:
                await session.cleanup(record, cloud=cloud, force=True, kill_running=True)
            else:  # cleanup deletes 1,250 volumes one by one (0.4 s each here): the instances
                # and the domain go, the volumes stay in this private cloud until it is removed
                await asyncio.to_thread(end_big_session, info, sid, ids)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        service.configure(info, boot_command=probe_boot_command())
    return SizeResult(
        n_jobs,
        record.n_instances,
        real_agents,
        samples["client"],
        samples["naive"],
        samples["raw"],
        samples["raw_l"],
        setup_s,
        profile_text,
        samples["full"],
        changes.count if changes is not None else 0,
        full_text,
        samples["beats"],
    )


SIZES = (10, 100, 1000, 3000, 10000)


def run(info: Any, sizes: tuple[int, ...] = SIZES, repeats: int = 5) -> list[SizeResult]:
    from awsac_tui.local import service

    snapshot_id = service.make_snapshot(
        Path(__file__).resolve().parents[1] / "examples" / "eventgen" / "release", "bench: scale"
    )
    out = []
    for n in sizes:
        # small sizes are cheap: more rounds; 10,000 jobs: a full read costs tens of seconds
        reps = repeats * 2 - 1 if n < 1000 else repeats if n <= 3000 else max(3, repeats - 2)
        coro = measure_size(info, snapshot_id, n, reps, real_agents=n <= 10, profile=n >= 1000)
        out.append(asyncio.run(coro))
    return out


KINDS = ("client", "full", "naive", "raw", "raw_limit", "beats")


def summary(r: SizeResult) -> dict[str, float | None]:
    """Medians per kind and measure (None: the kind was not run at this size)."""

    def m(samples: list[Sample], attr: str) -> float | None:
        return median([getattr(s, attr) for s in samples]) if samples else None

    return {
        kind + "_" + attr: m(getattr(r, kind), attr)
        for kind in KINDS
        for attr in ("wall", "calls", "bytes")
    }


def main() -> None:
    import sys

    # the figures replace results.json's "scale" entries of the sizes run (run_all --render)
    save = "--save" in sys.argv
    sizes = tuple(int(a) for a in sys.argv[1:] if not a.startswith("--")) or (10, 100)
    with private_local_cloud(boot_delay=0.0) as (info, _state):
        results = run(info, sizes, repeats=3)
    if save:
        import json

        import run_all

        saved = json.loads(RESULTS_JSON.read_text())
        date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        fresh = {
            r.n_jobs: {**run_all._plain(r), "summary": summary(r), "measured": date}
            for r in results
        }
        kept = [e for e in saved.get("scale", []) if e["n_jobs"] not in fresh]
        path = update_results(
            scale=sorted([*kept, *fresh.values()], key=lambda e: e["n_jobs"]),
            scale_date=date,
            scale_load=" ".join(f"{x:.2f}" for x in __import__("os").getloadavg()),
        )
        print(f"saved to {path}")

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v * 1000:.0f} ms"

    for r in results:
        s = summary(r)
        print(
            f"{r.n_jobs:5d} jobs {r.n_instances:4d} inst (real agents: {r.real_agents}, setup "
            f"{r.setup_s:.1f} s, {r.changed_per_tick} changed per tick): incremental "
            f"{ms(s['client_wall'])} {s['client_calls']:.0f} calls {s['client_bytes']:.0f} B | "
            f"full {ms(s['full_wall'])} {s['full_calls']:.0f} calls | raw limit "
            f"{ms(s['raw_limit_wall'])} {s['raw_limit_calls']:.0f} calls | raw "
            f"{ms(s['raw_wall'])} | naive {ms(s['naive_wall'])} | heartbeat poll "
            f"{ms(s['beats_wall'])} {s['beats_calls'] or 0:.0f} calls"
        )
        print("   incremental ops:", r.client[-1].ops, r.client[-1].op_seconds)
        print("   full ops:", r.full[-1].ops, r.full[-1].op_seconds)
        if r.profile:
            print(r.profile[:6000])


if __name__ == "__main__":
    main()
