"""``awsac demo``: the paper's eventgen example (chapter 6.3.3) on the local cloud, start to results.

Leaves the session in place (open it in the TUI); the agent leaves no instance or volume behind.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from awsac_agent import s3layout
from awsac_agent.errors import AwsacError, FormatError
from awsac_agent.status import FINISHED

from .progress import Output, human_size
from .report import format_job_blocks
from .spec import CloudProfile

if TYPE_CHECKING:
    from .cloud import Cloud
    from .views import SessionSnapshot

EXAMPLE = "eventgen"


def find_example(name: str = EXAMPLE) -> Path:
    """The example's directory: in the source tree, in the current directory, or shipped as data."""
    here = Path(__file__).resolve().parent
    for cand in (
        here.parent / "examples" / name,
        Path.cwd() / "examples" / name,
        here / "data" / "examples" / name,
    ):
        if (cand / "jobs.cfg").is_file() and (cand / "release").is_dir():
            return cand
    raise FormatError(
        f"cannot find the example examples/{name}/ (run `awsac demo` from the awsac source "
        "directory, or install awsac with `pip install -e .`)"
    )


def prepare_job_dir(example: Path, dest: Path, snapshot_id: str, image_id: str, owner: str) -> Path:
    """Copy the example (without its release/) to ``dest`` with the snapshot and image filled in."""
    from . import spec as specmod

    shutil.copytree(example, dest, ignore=shutil.ignore_patterns("release", "session.ini", "*.pyc"))
    jobs = dest / "jobs.cfg"
    lines = []
    for line in jobs.read_text(encoding="utf-8").splitlines():
        head = line.split("#", 1)[0].strip()
        if head and head.count(";") == 2:
            _, script, count = head.split(";")
            line = f"{snapshot_id};{script};{count}"
        lines.append(line)
    jobs.write_text("\n".join(lines) + "\n", encoding="utf-8")
    spec_path = dest / "session.toml"
    spec = specmod.load_spec(spec_path)
    spec = dataclasses.replace(
        spec, image_id=image_id, image_owner=owner, cloud=CloudProfile(local=True)
    )
    specmod.write_spec(spec_path, spec, header="awsac demo: the paper's eventgen example")
    return spec_path


def summary_table(snap: SessionSnapshot, result_sizes: dict[int, int]) -> str:
    """job, instance, launch index, status, return code, run time, result size."""
    head = ("job", "instance", "LI", "status", "rc", "run time", "result")
    rows = [head]
    for j in snap.jobs:
        run = "-"
        if j.runstarttime and j.runendtime:
            run = f"{(j.runendtime - j.runstarttime).total_seconds():.0f} s"
        rows.append(
            (
                str(j.jobnr),
                j.instance_id or "-",
                "-" if j.launchindex is None else str(j.launchindex),
                j.status,
                "-" if j.returncode is None else str(j.returncode),
                run,
                human_size(result_sizes.get(j.jobnr)),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


async def run_demo(outdir: str | Path | None = None, out: Output | None = None) -> int:
    """Run the eventgen session on the local cloud; 0 when every job finished."""
    from . import session
    from .cloud import Cloud
    from .local import service
    from .monitor import Monitor
    from .records import update_record
    from .views import all_terminal

    out = out or Output()
    example = find_example()
    out.say("# bringing the local cloud up (if it is not running yet)")
    info = await asyncio.to_thread(service.ensure_up, say=None)
    out.say(f"  local cloud at {info.endpoint}, image {info.image_id}")
    out.say(f"  {service.describe_state(info)}")
    out.say(f"# snapshotting {example / 'release'} (the software release)")
    snap_id = await asyncio.to_thread(
        service.make_snapshot, example / "release", "awsac demo: eventgen release"
    )
    out.say(f"  snapshot {snap_id}")
    outdir = Path(outdir) if outdir else Path.cwd() / "awsac-demo-results"
    await asyncio.to_thread(outdir.mkdir, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="awsac-demo-") as tmp:
        spec_path = await asyncio.to_thread(
            prepare_job_dir, example, Path(tmp) / EXAMPLE, snap_id, info.image_id, info.account_id
        )
        t0 = time.monotonic()
        async with Cloud(CloudProfile(local=True)) as cloud:
            plan = await session.plan_start(spec_path, cloud=cloud, say=out.say)
            out.say(f"# {plan.summary()}")
            with out.bar("uploading session archive") as bar:
                record = await session.start(plan, cloud, progress=bar, say=out.say)
            sid = record.session_id
            out.say(f"# waiting for the {record.n_jobs} jobs of {sid}")
            mon = Monitor(record, cloud, boot_timeout=120)
            last = None
            deadline = time.monotonic() + 600
            snap = await mon.refresh()
            while True:
                line = ", ".join(f"job {j.jobnr} {j.status}" for j in snap.jobs)
                if line != last:
                    out.say(f"  {time.monotonic() - t0:5.1f} s  {line}")
                    last = line
                if all_terminal(snap):
                    break
                if time.monotonic() > deadline:
                    raise AwsacError(
                        f"the demo session {sid} did not finish within 10 minutes "
                        f"(look at `awsac check {sid}` and `awsac console {sid} INSTANCE`)"
                    )
                await asyncio.sleep(1.0)
                snap = await mon.refresh()
            out.say("# waiting for the instances to upload their logs and terminate")
            left = await _wait_nothing_left(cloud, sid)
            out.say(f"# downloading the results into {outdir}")
            with out.bar("downloading results") as bar:
                got = await session.results(
                    record, outdir, overwrite=True, progress=bar, say=out.say, cloud=cloud
                )
            elapsed = time.monotonic() - t0
            sizes = {}
            for d in got:
                kind, n = s3layout.classify(d.key)
                if kind == "results" and n is not None:
                    sizes[n] = d.size
        # onto the stored record: results noted there what it downloaded (cleanup reads it)
        await asyncio.to_thread(update_record, record, state="ended")
    out.say("")
    out.say(format_job_blocks(snap))
    out.say("")
    out.say(summary_table(snap, sizes))
    out.say("")
    out.say(f"{len(got)} objects in {outdir / f'session-{sid}'}")
    out.say(f"time from start to results: {elapsed:.1f} s")
    out.say(left)
    out.say(f"open it in the TUI: awsac   (then pick {sid})")
    out.say(f"clean up:           awsac cleanup {sid} --yes")
    return 0 if all(j.status == FINISHED for j in snap.jobs) else 1


async def _wait_nothing_left(cloud: Cloud, sid: str, timeout: float = 120.0) -> str:
    """Wait until the agent has terminated its instances and deleted its volumes; say what is left."""
    from .resources import describe_instances, describe_volumes

    deadline = time.monotonic() + timeout
    while True:
        running = [
            i for i in await describe_instances(cloud, sid) if i["State"]["Name"] != "terminated"
        ]
        vols = [v for v in await describe_volumes(cloud, sid) if v["State"] != "deleted"]
        if (not running and not vols) or time.monotonic() > deadline:
            return f"left behind: {len(running)} running instance(s), {len(vols)} volume(s)"
        await asyncio.sleep(1.0)
