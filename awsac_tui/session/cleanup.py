"""Clean up a session carefully: a plan of what is left (asking the cloud, not the record), two
guards (running jobs, outputs never downloaded), then instances first, volumes, unfinished
uploads, objects and the status store, and a final re-list that proves nothing is left.

The CLI's ``cleanup`` and the TUI's ``x`` both use ``plan_cleanup`` and ``cleanup``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field

from awsac_agent import s3layout
from awsac_agent.errors import FormatError
from awsac_agent.status import (
    ACTIVE,
    FINISHED,
    KILLED,
    PENDING,
    TERMINAL,
    JobRecord,
    utcnow_iso,
)

from .. import records
from ..cloud import Cloud, cloud_errors, error_code, translate, wait_with
from ..progress import human_size
from ..records import SessionRecord
from ..resources import (
    describe_instances,
    describe_volumes,
    list_objects,
    list_uploads,
    terminate_instances,
)
from ..store._control import delete_keys
from ..views import INSTANCE_GONE
from .common import Confirm, Say, ask, cloud_for, quiet, store_for, wait_until
from .results import BOOKKEEPING_PREFIXES, names

CLEANUP_KINDS = ("instances", "volumes", "store", "objects")
RELIST_ROUNDS = 5  # deletes repeated while the re-list still finds something


@dataclass(frozen=True)
class CleanupPlan:
    """What is left of a session and what cleanup would do with it (nothing changed yet)."""

    session_id: str
    bucket: str
    kinds: frozenset[str]
    instances: tuple[tuple[str, str], ...] = ()  # (instance id, state), not yet terminated
    running_jobs: tuple[tuple[int, str], ...] = ()  # (job, instance id): jobs that still run
    pending_jobs: tuple[int, ...] = ()  # jobs that never started (they will not run)
    volumes: tuple[str, ...] = ()
    store_kind: str = ""
    store_exists: bool = False
    objects: tuple[tuple[str, str, int], ...] = ()  # (key, ETag, size)
    unfetched: tuple[str, ...] = ()  # keys (relative) of outputs never downloaded
    uploads: tuple[tuple[str, str, int], ...] = ()  # (key, upload id, bytes held)
    jobs: tuple[JobRecord, ...] = field(default=(), repr=False)  # last known states

    @property
    def empty(self) -> bool:
        return not (self.instances or self.volumes or self.store_exists or self.objects)

    @property
    def object_bytes(self) -> int:
        return sum(s for _, _, s in self.objects)

    @property
    def upload_bytes(self) -> int:
        return sum(s for _, _, s in self.uploads)

    def running_text(self) -> str:
        by: dict[str, list[int]] = {}
        for job, iid in self.running_jobs:
            by.setdefault(iid, []).append(job)
        return "; ".join(
            f"job{'s' if len(js) > 1 else ''} {', '.join(map(str, js))} on {iid}"
            for iid, js in by.items()
        )

    def describe(self) -> str:
        """The plan in a few lines, naming what the guards protect (the CLI prints it, the TUI's
        confirmation shows it)."""
        lines = [f"left of session {self.session_id}:"]
        if self.instances:
            ids = ", ".join(f"{i} ({s})" for i, s in self.instances)
            lines.append(f"  {len(self.instances)} instance(s) to terminate: {ids}")
        if self.running_jobs:
            lines.append(f"  still running: {self.running_text()} (terminating ends them)")
        if self.pending_jobs:
            lines.append(
                f"  never started: job(s) {', '.join(map(str, self.pending_jobs))} (they will not run)"
            )
        if self.volumes:
            lines.append(f"  {len(self.volumes)} volume(s): {', '.join(self.volumes)}")
        if self.uploads:
            lines.append(
                f"  {len(self.uploads)} unfinished multipart upload(s) holding "
                f"{human_size(self.upload_bytes)} (billed until aborted)"
            )
        if self.objects:
            lines.append(
                f"  {len(self.objects)} object(s) in s3://{self.bucket}/{self.session_id}/ "
                f"({human_size(self.object_bytes)})"
            )
        if self.unfetched:
            lines.append(
                f"  never downloaded: {len(self.unfetched)} output(s): {names(list(self.unfetched))}"
            )
        if self.store_exists:
            lines.append(f"  status store ({self.store_kind}) {self.session_id}")
        if self.empty and not self.uploads:
            lines.append("  nothing: no instance, volume, object or status store")
        return "\n".join(lines)


@dataclass
class CleanupReport:
    """What cleanup removed and what it kept (each with the reason), one line each."""

    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    summary: str = ""
    declined: bool = False  # the user answered no: nothing was removed, by choice

    @property
    def refused(self) -> bool:
        """Whether a guard kept something (the CLI's exit code 1)."""
        return bool(self.kept) and not self.declined


def _is_output(rel: str, archive_name: str) -> bool:
    """Whether ``results`` would download this object and it is not the uploaded archive."""
    return not rel.startswith(BOOKKEEPING_PREFIXES) and rel != archive_name


async def plan_cleanup(
    record: SessionRecord,
    kinds: Iterable[str] = CLEANUP_KINDS,
    *,
    cloud: Cloud | None = None,
) -> CleanupPlan:
    """Ask the cloud what is left of the session (tagged instances and volumes, objects and
    unfinished uploads under its prefix, its status store) and which jobs still run."""
    kinds = frozenset(kinds)
    bad = kinds - set(CLEANUP_KINDS)
    if bad:
        raise FormatError(f"unknown cleanup kinds {sorted(bad)} (use {', '.join(CLEANUP_KINDS)})")
    sid = record.session_id
    prefix = s3layout.prefix(sid)
    async with cloud_for(record, cloud) as c:
        raw = await describe_instances(c, sid)
        live = [(i["InstanceId"], i["State"]["Name"]) for i in raw]
        live = [(i, s) for i, s in live if s != "terminated"]
        vols = [
            v["VolumeId"]
            for v in await describe_volumes(c, sid)
            if v["State"] not in ("deleted", "deleting")
        ]
        store = store_for(record, c)
        exists = await store.exists()
        jobs = await store.read_all() if exists else []
        objects = await list_objects(c, record.bucket, prefix)
        uploads = await list_uploads(c, record.bucket, prefix)
    alive = {i for i, s in live if s not in INSTANCE_GONE}
    running = tuple(
        sorted(
            (j.jobnr, j.instance_id or "?")
            for j in jobs
            if j.status in ACTIVE and (j.instance_id in alive or (j.instance_id is None and alive))
        )
    )
    reported = {j.jobnr for j in jobs}
    pending = (
        tuple(
            sorted(
                {j.jobnr for j in jobs if j.status == PENDING}
                | {n for n in range(1, record.n_jobs + 1) if n not in reported}
            )
        )
        if alive
        else ()
    )
    fetched = record.fetched_etags()
    unfetched = tuple(
        rel
        for rel, etag in ((k[len(prefix) :], e) for k, e, _ in objects)
        if _is_output(rel, record.archive_name) and fetched.get(rel) != etag
    )
    return CleanupPlan(
        session_id=sid,
        bucket=record.bucket,
        kinds=kinds,
        instances=tuple(live) if "instances" in kinds else (),
        running_jobs=running if "instances" in kinds else (),
        pending_jobs=pending if "instances" in kinds else (),
        volumes=tuple(vols) if "volumes" in kinds else (),
        store_kind=store.kind,
        store_exists=exists and "store" in kinds,
        objects=tuple(objects) if "objects" in kinds else (),
        unfetched=unfetched if "objects" in kinds else (),
        uploads=tuple(uploads) if "objects" in kinds else (),
        jobs=tuple(jobs),
    )


async def terminate_and_wait(cloud: Cloud, session_id: str, ids: list[str], timeout: float) -> None:
    """Terminate ``ids`` and wait until EC2 reports every one terminated."""
    await terminate_instances(cloud, ids, f"cleanup of {session_id}")
    await wait_with(
        cloud,
        "ec2",
        "instance_terminated",
        timeout,
        f"instances {', '.join(ids)} to terminate",
        InstanceIds=ids,
    )


async def delete_volumes(
    cloud: Cloud, session_id: str, vids: list[str], timeout: float, say: Say = quiet
) -> None:
    """Detach (forced) and delete the session's volumes ``vids``, waiting for each step."""
    ec2 = await cloud.client("ec2")
    current = {v["VolumeId"]: v for v in await describe_volumes(cloud, session_id)}
    detach_problems: list[str] = []
    for vid in vids:
        if current.get(vid, {}).get("Attachments"):
            try:
                await ec2.detach_volume(VolumeId=vid, Force=True)
            except Exception as exc:  # noqa: BLE001 - said, and named if the wait times out
                code = error_code(exc)
                if not code.startswith(("IncorrectState", "InvalidVolume.NotFound")):
                    problem = f"DetachVolume {vid}: {translate(exc)}"
                    detach_problems.append(problem)
                    say(problem)

    async def detached() -> bool:
        now = {v["VolumeId"]: v for v in await describe_volumes(cloud, session_id)}
        return all(not now.get(x, {}).get("Attachments") for x in vids)

    await wait_until(
        detached,
        timeout,
        "volumes to detach" + (f" ({'; '.join(detach_problems)})" if detach_problems else ""),
    )
    for vid in vids:
        try:
            await ec2.delete_volume(VolumeId=vid)
        except Exception as exc:  # noqa: BLE001
            if not error_code(exc).startswith("InvalidVolume.NotFound"):
                async with cloud_errors(f"DeleteVolume {vid}"):
                    raise

    await wait_with(
        cloud, "ec2", "volume_deleted", timeout, "volumes to be deleted", VolumeIds=vids
    )


async def delete_objects(cloud: Cloud, record: SessionRecord, only_prefix: str | None) -> list[str]:
    """Delete every object under the session prefix (or ``only_prefix``); the URLs deleted."""
    prefix = only_prefix or s3layout.prefix(record.session_id)
    keys = [k for k, _, _ in await list_objects(cloud, record.bucket, prefix)]
    async with cloud_errors(f"deleting s3://{record.bucket}/{prefix}"):
        done = await delete_keys(cloud, record.bucket, keys) if keys else []
    return [f"s3://{record.bucket}/{k}" for k in done]


async def abort_uploads(
    cloud: Cloud, bucket: str, uploads: Iterable[tuple[str, str, int]]
) -> list[str]:
    """Abort unfinished multipart uploads; one line per upload aborted."""
    s3 = await cloud.client("s3")
    out = []
    for key, upload_id, size in uploads:
        try:
            await s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) != "NoSuchUpload":
                async with cloud_errors(f"AbortMultipartUpload s3://{bucket}/{key}"):
                    raise
        out.append(
            f"aborted unfinished upload of s3://{bucket}/{key} ({human_size(size)} of parts)"
        )
    return out


def final_job_states(
    record: SessionRecord, plan: CleanupPlan, ended: Iterable[int] = ()
) -> tuple[dict[str, str], ...]:
    """The jobs' last known states, kept in the record of a cleaned session. A job still running
    or never started when cleanup began, or one in ``ended`` (running on an instance cleanup
    terminated) that did not finish, ends ``killed`` by this cleanup with the reason."""
    by = {j.jobnr: j for j in plan.jobs}
    ended = set(ended)
    now = utcnow_iso()
    out = []
    for n in sorted(set(by) | set(range(1, record.n_jobs + 1))):
        job = by.get(n) or JobRecord(n)
        if job.status not in TERMINAL or (n in ended and job.status != FINISHED):
            if n in ended or job.status in ACTIVE:
                why = f"ended by awsac cleanup at {now}"
                if job.instance_id:
                    why += f" (it ran on {job.instance_id})"
            else:
                why = f"never ran: the session was cleaned up at {now}"
            job = job.with_(status=KILLED, error=why, runendtime=job.runendtime or now)
        out.append(job.to_attributes())
    return tuple(out)


async def cleanup(
    record: SessionRecord,
    kinds: Iterable[str] = CLEANUP_KINDS,
    *,
    force: bool = False,
    kill_running: bool = False,
    confirm: Confirm | None = None,
    say: Say = quiet,
    cloud: Cloud | None = None,
    timeout: float = 300.0,
    plan: CleanupPlan | None = None,
) -> CleanupReport:
    """Remove what the session left, with two guards.

    - Instances that still run jobs are terminated only with ``kill_running`` (or a yes from
      ``confirm`` to a question naming them); kept, they keep their volumes, the objects, the
      uploads and the status store (they still write there).
    - Outputs never downloaded (per the record's ``fetched``) are deleted only with ``force`` (or
      a yes to a question naming them); kept, every object and the status store stay, so
      ``results`` and ``check`` still work.

    ``confirm`` (None: nobody to ask) also gets one last question before anything is removed.
    Order: instances (waiting until they are terminated), volumes, unfinished multipart uploads,
    objects, status store; then objects and uploads are listed again (deleted again if a late
    upload landed) until none is left. A full cleanup keeps the jobs' last states in the record.
    """
    sid = record.session_id
    report = CleanupReport()
    final: tuple[dict[str, str], ...] = ()
    objects_deleted = bytes_deleted = uploads_aborted = upload_bytes = 0

    def removed(text: str) -> None:
        report.removed.append(text)
        say(text)

    async with cloud_for(record, cloud) as c:
        plan = plan or await plan_cleanup(record, kinds, cloud=c)
        running_at_start = plan.running_jobs
        kill_ok = kill_running or not plan.running_jobs
        if not kill_ok and confirm is not None:
            kill_ok = await ask(
                confirm,
                f"{plan.running_text()} still run. terminate their instances (the jobs end as "
                "killed)?",
            )
        force_ok = force or not plan.unfetched
        if not force_ok and confirm is not None:
            force_ok = await ask(
                confirm,
                f"delete {len(plan.unfetched)} output(s) never downloaded "
                f"({names(list(plan.unfetched))})?",
            )
        busy = {iid for _, iid in plan.running_jobs} if not kill_ok else set()
        if busy:
            report.kept.append(
                f"instances {', '.join(sorted(busy))} (still running {plan.running_text()}; pass "
                f"--kill-running to end them, or wait, or `awsac kill {sid} JOB`), with their "
                "volumes, the objects, the uploads and the status store (they still write there)"
            )
        if not force_ok:
            report.kept.append(
                f"all {len(plan.objects)} objects and the status store: {len(plan.unfetched)} "
                f"output(s) were never downloaded ({names(list(plan.unfetched))}); run `awsac "
                f"results {sid} -o DIR` first, or `awsac cleanup {sid} --force` to delete them"
            )
        terminate = [i for i, s in plan.instances if i not in busy]
        volumes = list(plan.volumes)
        keep_data = bool(busy) or not force_ok
        doing = bool(
            terminate
            or volumes
            or (not keep_data and (plan.objects or plan.uploads or plan.store_exists))
        )
        if (
            doing
            and confirm is not None
            and not await ask(
                confirm,
                f"remove what is listed for {sid}"
                + (" (except what is kept above)" if report.kept else "")
                + "?",
            )
        ):
            report.kept.insert(0, "everything: you answered no")
            report.declined = True
            report.summary = "removed nothing; kept everything (you answered no)"
            return report
        if terminate:
            await terminate_and_wait(c, sid, terminate, timeout)
            for iid in terminate:
                removed(f"terminated instance {iid}")
        if volumes:
            if busy:  # the volumes of a kept instance stay attached to it
                attached = {
                    v["VolumeId"]
                    for v in await describe_volumes(c, sid)
                    for a in v.get("Attachments") or []
                    if a.get("InstanceId") in busy
                }
                volumes = [v for v in volumes if v not in attached]
            if volumes:
                await delete_volumes(c, sid, volumes, timeout, say)
                for vid in volumes:
                    removed(f"deleted volume {vid}")
        if not keep_data:
            if plan.store_exists:  # the states as the instances left them, read once more
                with contextlib.suppress(Exception):
                    plan = dataclasses.replace(
                        plan, jobs=tuple(await store_for(record, c).read_all())
                    )
            final = final_job_states(record, plan, {n for n, _ in running_at_start})
            prefix = s3layout.prefix(sid)
            for _round in range(RELIST_ROUNDS):
                uploads = (
                    await list_uploads(c, record.bucket, prefix) if "objects" in plan.kinds else []
                )
                for line in await abort_uploads(c, record.bucket, uploads):
                    removed(line)
                uploads_aborted += len(uploads)
                upload_bytes += sum(s for _, _, s in uploads)
                listing = (
                    await list_objects(c, record.bucket, prefix) if "objects" in plan.kinds else []
                )
                sizes = {f"s3://{record.bucket}/{k}": s for k, _, s in listing}
                if listing:
                    for url in await delete_objects(c, record, None):
                        removed(f"deleted {url}")
                        objects_deleted += 1
                        bytes_deleted += sizes.get(url, 0)
                if "store" in plan.kinds:
                    store = store_for(record, c)
                    if await store.exists():
                        for item in await store.delete_all():
                            removed(f"deleted {item}")
                if not uploads and not listing:
                    break  # the re-list found nothing: nothing is left
            else:
                report.kept.append(
                    f"objects under s3://{record.bucket}/{prefix} keep appearing after "
                    f"{RELIST_ROUNDS} rounds of deletes (something still writes there: run cleanup again)"
                )
        records.sweep_scratch()
    counts = []
    n_inst = sum(1 for r in report.removed if r.startswith("terminated instance"))
    n_vol = sum(1 for r in report.removed if r.startswith("deleted volume"))
    if n_inst:
        counts.append(f"{n_inst} instance(s)")
    if n_vol:
        counts.append(f"{n_vol} volume(s)")
    if not keep_data:
        if uploads_aborted:
            counts.append(
                f"{uploads_aborted} unfinished upload(s) holding {human_size(upload_bytes)}"
            )
        if objects_deleted:
            counts.append(f"{objects_deleted} object(s), {human_size(bytes_deleted)}")
        if any(r.startswith("deleted SimpleDB") for r in report.removed) or (
            plan.store_exists and plan.store_kind == "s3"
        ):
            counts.append(f"status store ({plan.store_kind})")
    report.summary = (
        "removed "
        + (", ".join(counts) if counts else "nothing (nothing was left)")
        + ("; kept " + "; ".join(report.kept) if report.kept else "; kept nothing")
    )
    full = set(CLEANUP_KINDS) <= plan.kinds and not report.kept
    if full and records.record_path(sid).exists():
        await asyncio.to_thread(_mark_cleaned, record, final)
    return report


def _mark_cleaned(record: SessionRecord, final: tuple[dict[str, str], ...]) -> None:
    """Record state ``cleaned`` with the jobs' last states (onto the stored record)."""
    records.update_record(
        record,
        state="cleaned",
        cleaned_at=utcnow_iso(),
        **({"final_jobs": final} if final else {}),
    )
