"""One polling loop per session -> an immutable SessionSnapshot (instances, volumes, jobs).

The snapshot's types live in views.py; this module fills them from the cloud and the status store.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace as _replace
from datetime import UTC, datetime

from awsac_agent.status import LOST, PENDING, TERMINAL, parse_iso

from . import records
from .cloud import Cloud
from .records import SessionRecord
from .resources import describe_instances, describe_volumes
from .store import open_store
from .sweep import last_good, sweep_session
from .views import (
    InstanceView,
    JobView,
    SessionSnapshot,
    VolumeView,
    all_terminal,
    attempt_views,
)

DEFAULT_BOOT_TIMEOUT = 300.0


def _record_jobs(record: SessionRecord) -> list[JobView]:
    """Pending job views from the record's jobs.cfg lines (before any status exists)."""
    from awsac_agent import assignment, jobscfg

    lines = jobscfg.parse_jobs_cfg("\n".join(record.jobs)) if record.jobs else []
    jobs = jobscfg.expand_jobs(lines)
    if not jobs:
        jobs = [jobscfg.Job(n, None, "") for n in range(1, record.n_jobs + 1)]
    cpi = max(1, record.cores_per_instance)
    return [
        JobView(
            jobnr=j.jobnr,
            status=PENDING,
            launchindex=assignment.instance_for_job(j.jobnr, cpi),
            shellscript=j.script or None,
            snapshot=j.snapshot,
        )
        for j in jobs
    ]


class Monitor:
    """Refreshes one session: instances and volumes (by tag) + the status store -> SessionSnapshot."""

    def __init__(
        self,
        record: SessionRecord,
        cloud: Cloud,
        *,
        boot_timeout: float = DEFAULT_BOOT_TIMEOUT,
        write_lost: bool = True,
    ) -> None:
        self.record = record
        self.cloud = cloud
        self.boot_timeout = boot_timeout
        self.write_lost = write_lost
        self.store = open_store(record.status_store, cloud, record.session_id, record.bucket)
        self.last: SessionSnapshot | None = None

    async def refresh(self) -> SessionSnapshot:
        """One refresh. Instances are read before the store, so a job whose instance is gone
        and whose status is still not terminal really never finished (-> lost)."""
        sid = self.record.session_id
        # Volumes in parallel; instances are read before the status store (the `lost` rule).
        vol_task = asyncio.create_task(describe_volumes(self.cloud, sid))
        try:
            raw_instances = await describe_instances(self.cloud, sid)
        except BaseException:
            vol_task.cancel()
            raise
        raw_volumes = await vol_task
        try:
            store_records = {r.jobnr: r for r in await self.store.read_all()}
        except Exception as exc:  # noqa: BLE001 - throttled store: last good snapshot + notice
            return last_good(self, exc)
        now = datetime.now(UTC)
        notices: list[str] = await sweep_session(
            self, raw_instances, now, {r.instance_id for r in store_records.values()}
        )
        notices += self.store.problems

        instances: dict[int | None, InstanceView] = {}
        views: list[InstanceView] = []
        for i in sorted(raw_instances, key=lambda x: (x.get("AmiLaunchIndex", 0), x["InstanceId"])):
            lt = i.get("LaunchTime")
            v = InstanceView(
                instance_id=i["InstanceId"],
                launchindex=i.get("AmiLaunchIndex"),
                state=i["State"]["Name"],
                instance_type=i.get("InstanceType"),
                zone=(i.get("Placement") or {}).get("AvailabilityZone"),
                public_dns=i.get("PublicDnsName") or None,
                launch_time=lt if isinstance(lt, datetime) else None,
            )
            views.append(v)
            # a relaunch with the same index (should not happen) keeps the live one
            prev = instances.get(v.launchindex)
            if prev is None or prev.state in ("shutting-down", "terminated"):
                instances[v.launchindex] = v
        by_id = {v.instance_id: v for v in views}

        jobs: list[JobView] = []
        lost: list[tuple[int, str]] = []
        started = parse_iso(self.record.created_at) or now
        for base in _record_jobs(self.record):
            rec = store_records.pop(base.jobnr, None)
            if rec is not None:
                job = JobView(
                    jobnr=rec.jobnr,
                    status=rec.status,
                    instance_id=rec.instance_id,
                    launchindex=rec.launchindex
                    if rec.launchindex is not None
                    else base.launchindex,
                    shellscript=rec.shellscript or base.shellscript,
                    snapshot=rec.snapshot or base.snapshot,
                    returncode=rec.returncode,
                    runstarttime=parse_iso(rec.runstarttime),
                    runendtime=parse_iso(rec.runendtime),
                    savestarttime=parse_iso(rec.savestarttime),
                    saveendtime=parse_iso(rec.saveendtime),
                    error=rec.error,
                    attempt=rec.attempt,
                    history=attempt_views(rec),
                )
            else:
                job = base
            inst = by_id.get(job.instance_id) if job.instance_id else instances.get(job.launchindex)
            if inst is not None and job.instance_id is None:
                job = _replace(job, instance_id=inst.instance_id)
            if job.status not in TERMINAL and self.record.state in ("running", "ended"):
                reason = None
                if inst is not None and inst.state in ("shutting-down", "terminated", "stopped"):
                    reason = (
                        f"instance {inst.instance_id} is {inst.state} and the job never finished"
                    )
                elif inst is None and (now - started).total_seconds() > self.boot_timeout:
                    reason = f"no instance with launch index {job.launchindex} exists"
                if reason:
                    job = _replace(job, status=LOST, error=reason)
                    lost.append((job.jobnr, reason))
            jobs.append(job)
        for rec in store_records.values():  # jobs the record does not know (should not happen)
            jobs.append(
                JobView(
                    jobnr=rec.jobnr,
                    status=rec.status,
                    instance_id=rec.instance_id,
                    launchindex=rec.launchindex,
                    error=rec.error,
                    returncode=rec.returncode,
                )
            )

        reported = {j.instance_id for j in jobs if j.status != PENDING}
        final_views = []
        for v in views:
            silent = (
                v.state == "running"
                and v.instance_id not in reported
                and v.launch_time is not None
                and (now - v.launch_time).total_seconds() > self.boot_timeout
            )
            if silent:
                v = _replace(v, silent=True)
                notices.append(
                    f"instance {v.instance_id} is running but no job has reported after "
                    f"{self.boot_timeout:.0f} s; look at its console output (`awsac console "
                    f"{sid} {v.instance_id}`)"
                )
            final_views.append(v)

        volumes = []
        for vol in sorted(raw_volumes, key=lambda x: x["VolumeId"]):
            att = (vol.get("Attachments") or [{}])[0]
            volumes.append(
                VolumeView(
                    volume_id=vol["VolumeId"],
                    snapshot=vol.get("SnapshotId") or None,
                    state=vol.get("State", "unknown"),
                    instance_id=att.get("InstanceId"),
                    device=att.get("Device"),
                    size_gib=vol.get("Size"),
                )
            )

        if lost and self.write_lost:
            for jobnr, reason in lost:
                try:
                    await self.store.mark_lost(jobnr, reason)
                except Exception as exc:  # noqa: BLE001 - shown, retried on the next refresh
                    notices.append(f"could not mark job {jobnr} lost in the status store: {exc}")
        snap = SessionSnapshot(
            session_id=sid,
            cloud=self.record.cloud.describe(),
            taken_at=now,
            jobs=tuple(sorted(jobs, key=lambda j: j.jobnr)),
            instances=tuple(final_views),
            volumes=tuple(volumes),
            notices=tuple(notices),
        )
        self.last = snap
        if (
            self.record.state == "running"
            and all_terminal(snap)
            and all(v.state == "terminated" for v in final_views)
            and self.record.path is not None
        ):
            await asyncio.to_thread(self._mark_ended)
        return snap

    def _mark_ended(self) -> None:
        if records.record_path(self.record.session_id).exists():
            self.record = records.save_record(self.record.with_(state="ended"))

    async def watch(self, interval: float = 5.0) -> AsyncIterator[SessionSnapshot]:
        """Snapshots every ``interval`` seconds until every job is terminal."""
        while True:
            snap = await self.refresh()
            yield snap
            if all_terminal(snap):
                return
            await asyncio.sleep(interval)
