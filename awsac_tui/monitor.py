"""One polling loop per session -> an immutable SessionSnapshot (instances, volumes, jobs).

The snapshot's types live in views.py; this module fills them from the cloud and the status
store. A refresh costs what changed: it asks EC2 only for instances and volumes that can have
changed (resources.InstanceTracker/VolumeTracker), the status store only for records written
since its high-water mark, and builds the new snapshot by applying those changes to the one
before; every ``full_every`` refreshes it reads everything again, to catch what the increments
could miss. It also marks jobs ``lost`` whose instance went away under them or whose agent went
silent (heartbeats), and ends an instance whose agent is silent. ``MonitorPool`` runs monitors
on a thread of their own, so that parsing answers never holds up the TUI's event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from dataclasses import replace as _replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from awsac_agent import assignment as _assignment
from awsac_agent.errors import AwsacError
from awsac_agent.status import (
    ACTIVE,
    HEARTBEAT_MISSED,
    HEARTBEAT_SECONDS,
    LOST,
    PENDING,
    TERMINAL,
    JobRecord,
    cause_never_started,
    cause_silent,
    cause_stopped,
    cause_terminated,
    parse_iso,
    updated_iso,
)
from awsac_agent.userdata import parse_userdata

from . import records
from .cloud import Cloud
from .records import SessionRecord
from .resources import (
    InstanceTracker,
    VolumeTracker,
    state_of,
    state_reason,
    terminate_instances,
)
from .store import open_store
from .store.heartbeat import HeartbeatListing, list_heartbeats, read_heartbeat
from .sweep import last_good, sweep_session
from .views import (
    INSTANCE_GONE,
    INSTANCE_UP,
    Changes,
    InstanceView,
    JobView,
    SessionSnapshot,
    VolumeView,
    all_terminal,
    attempt_views,
)

DEFAULT_BOOT_TIMEOUT = 300.0
FULL_EVERY = 12  # every 12th refresh reads everything (1 min at the TUI's 5 s)
OVERLAP_SECONDS = 10.0  # the incremental read's window reaches this far behind its mark
STOPPED = ("stopping", "stopped")

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _record_jobs(record: SessionRecord) -> list[JobView]:
    """Pending job views from the record's jobs.cfg lines (before any status exists)."""
    from awsac_agent import jobscfg

    lines = jobscfg.parse_jobs_cfg("\n".join(record.jobs)) if record.jobs else []
    jobs = jobscfg.expand_jobs(lines)
    if not jobs:
        jobs = [jobscfg.Job(n, None, "") for n in range(1, record.n_jobs + 1)]
    cpi = max(1, record.cores_per_instance)
    return [
        JobView(
            jobnr=j.jobnr,
            status=PENDING,
            launchindex=_assignment.instance_for_job(j.jobnr, cpi),
            shellscript=j.script or None,
            snapshot=j.snapshot,
        )
        for j in jobs
    ]


def record_view(base: JobView, rec: JobRecord | None) -> JobView:
    """A job's view from its status record (``base``: what jobs.cfg says, for what it lacks)."""
    if rec is None:
        return base
    return JobView(
        jobnr=rec.jobnr,
        status=rec.status,
        instance_id=rec.instance_id,
        launchindex=rec.launchindex if rec.launchindex is not None else base.launchindex,
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
        results=rec.results,
    )


def cleaned_snapshot(record: SessionRecord, now: datetime) -> SessionSnapshot:
    """A cleaned session as it was: the job states cleanup kept in the record (the cloud holds
    nothing of it any more), marked ``cleaned``."""
    kept: dict[int, JobRecord] = {}
    for attrs in record.final_jobs:
        try:
            rec = JobRecord.from_attributes(attrs)
        except (ValueError, TypeError):
            continue
        kept[rec.jobnr] = rec
    jobs = [record_view(base, kept.pop(base.jobnr, None)) for base in _record_jobs(record)]
    jobs += [record_view(JobView(jobnr=n, status=PENDING), r) for n, r in sorted(kept.items())]
    when = f" at {record.cleaned_at}" if record.cleaned_at else ""
    notice = (
        f"session cleaned up{when}: its last known job states (nothing of it is left in the cloud)"
        if record.final_jobs
        else f"session cleaned up{when}; its job states were not kept (an older awsac cleaned it)"
    )
    return SessionSnapshot(
        session_id=record.session_id,
        cloud=record.cloud.describe(),
        taken_at=now,
        jobs=tuple(sorted(jobs, key=lambda j: j.jobnr)),
        notices=(notice,),
        cleaned=True,
    )


def instance_view(raw: dict[str, Any], ended_at: datetime | None) -> InstanceView:
    lt = raw.get("LaunchTime")
    state = state_of(raw)
    return InstanceView(
        instance_id=raw["InstanceId"],
        launchindex=raw.get("AmiLaunchIndex"),
        state=state,
        instance_type=raw.get("InstanceType"),
        zone=(raw.get("Placement") or {}).get("AvailabilityZone"),
        public_dns=raw.get("PublicDnsName") or None,
        launch_time=lt if isinstance(lt, datetime) else None,
        state_reason=state_reason(raw) if state != "running" else None,
        ended_at=ended_at,
    )


def volume_view(raw: dict[str, Any]) -> VolumeView:
    att = (raw.get("Attachments") or [{}])[0]
    return VolumeView(
        volume_id=raw["VolumeId"],
        snapshot=raw.get("SnapshotId") or None,
        state=raw.get("State", "unknown"),
        instance_id=att.get("InstanceId"),
        device=att.get("Device"),
        size_gib=raw.get("Size"),
    )


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _max_updated(recs: Iterable[JobRecord]) -> datetime | None:
    stamps = [r.updated for r in recs if r.updated]
    return parse_iso(max(stamps)) if stamps else None


class Monitor:
    """Refreshes one session: instances and volumes (by tag) + the status store -> SessionSnapshot.

    ``full_every``: every how many refreshes everything is read again (1: always, the old way).
    ``overlap``: seconds the incremental store read reaches behind its high-water mark (clock
    skew between agents, writes that land while we read). ``clock``: the time (tests inject
    one). Heartbeats are listed every ``heartbeat_every`` seconds (default: the beat interval);
    an agent that missed ``missed_beats`` beats on a running instance is silent: its unfinished
    jobs are marked lost and (``terminate_silent``) its instance terminated, once. With
    ``heartbeats_apart`` the refresh does not list them (after its first): the owner calls
    ``poll_heartbeats`` on a timer of its own (``MonitorPool`` does), and the next refresh applies
    what the poll found, so a tick costs the three reads of what changed.
    """

    def __init__(
        self,
        record: SessionRecord,
        cloud: Cloud,
        *,
        boot_timeout: float = DEFAULT_BOOT_TIMEOUT,
        write_lost: bool = True,
        full_every: int = FULL_EVERY,
        overlap: float = OVERLAP_SECONDS,
        clock: Clock | None = None,
        heartbeat_interval: float = HEARTBEAT_SECONDS,
        missed_beats: int = HEARTBEAT_MISSED,
        heartbeat_every: float | None = None,
        terminate_silent: bool = True,
        heartbeats_apart: bool = False,
    ) -> None:
        self.record = record
        self.cloud = cloud
        self.boot_timeout = boot_timeout
        self.write_lost = write_lost
        self.full_every = max(1, full_every)
        self.overlap = overlap
        self.clock: Clock = clock or _utcnow
        self.heartbeat_interval = heartbeat_interval
        self.missed_beats = max(1, missed_beats)
        self.heartbeat_every = heartbeat_interval if heartbeat_every is None else heartbeat_every
        self.terminate_silent = terminate_silent
        self.heartbeats_apart = heartbeats_apart
        self.store = open_store(record.status_store, cloud, record.session_id, record.bucket)
        self.last: SessionSnapshot | None = None
        self.instances = InstanceTracker(record.session_id)
        self.volumes = VolumeTracker(record.session_id)
        ud = parse_userdata(record.runuserdata or "")
        try:
            self.queue = bool(ud) and ud.assignment == _assignment.QUEUE  # type: ignore[union-attr]
        except AwsacError:
            self.queue = False
        self.refreshes = 0
        self.full_reads = 0
        self._force_full = False
        self._legacy_store = False  # a live record without `updated`: read whole every time
        self._mark: datetime | None = None
        self._records: dict[int, JobRecord] = {}
        self._base = {j.jobnr: j for j in _record_jobs(record)}
        self._views: dict[int, JobView] = {}
        self._by_instance: dict[str, set[int]] = {}
        self._by_li: dict[int, set[int]] = {}
        self._unbound: set[int] = set()  # live jobs without an instance
        self._li_map: dict[int, str] = {}
        self._inst_views: dict[str, InstanceView] = {}
        self._vol_views: dict[str, VolumeView] = {}
        self._lost_written: set[tuple[int, int]] = set()
        self._lost_retry: set[int] = set()
        self._silent: dict[str, tuple[float, datetime]] = {}  # instance -> (seconds, last beat)
        self._hb_interval: dict[str, float] = {}
        self._hb: HeartbeatListing | None = None
        self._hb_due: datetime | None = None
        self._hb_changed: set[str] = set()  # silence changes of polls the refresh has not applied
        self._hb_notices: list[str] = []
        self._terminated: set[str] = set()
        self._booted = False  # past the boot timeout (jobs without instance become lost)
        self._positions: dict[int, int] = {}  # job number -> index in the last snapshot's jobs
        self._carry_inst: set[str] = set()  # changes not yet applied (a failed store read)
        self._carry_vol: set[str] = set()

    # ---- the refresh ---------------------------------------------------------------------

    def force_full(self) -> None:
        """Read everything at the next refresh (e.g. after launching a new reservation)."""
        self._force_full = True

    def _full_due(self) -> bool:
        return (
            self._force_full
            or self.refreshes % self.full_every == 0
            or self._mark is None
            or self._legacy_store
        )

    async def refresh(self) -> SessionSnapshot:
        """One refresh. Instances are read before the store, so a job whose instance is gone
        and whose status is still not terminal really never finished (-> lost)."""
        now = self.clock()
        if self.record.state == "cleaned":
            self.last = cleaned_snapshot(self.record, now)
            return self.last
        full = self._full_due()
        hint = {
            r.instance_id
            for r in self._records.values()
            if r.instance_id and r.instance_id not in self.instances.known
        }
        self._carry_inst |= await self.instances.refresh(self.cloud, full, now, hint)
        since = None if full or self._mark is None else updated_iso(self._since())
        vol_task = asyncio.create_task(self.volumes.base(self.cloud, full))
        try:
            read = await self.store.read(since)
        except Exception as exc:  # noqa: BLE001 - throttled store: last good snapshot + notice
            vol_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                self._carry_vol |= await vol_task
            return last_good(self, exc)
        self._carry_vol |= await vol_task
        changed_inst, self._carry_inst = self._carry_inst, set()
        changed_rec = self._apply_records(read.records, read.complete, now)
        named = {
            r.instance_id
            for n in changed_rec
            if (r := self._records.get(n)) is not None
            and r.instance_id
            and r.instance_id not in self.instances.known
        }
        if named:  # a new reservation's agents have written: show their instances now
            changed_inst |= await self.instances.learn(self.cloud, named, now)
        self._force_full = False
        self.refreshes += 1
        self.full_reads += full

        notices: list[str] = []
        reported = {
            r.instance_id for r in self._records.values() if r.instance_id and r.status != PENDING
        }
        raw_instances = list(self.instances.known.values())
        notices += await sweep_session(self, raw_instances, now, reported)
        notices += self.store.problems
        if self.heartbeats_apart and self.last is not None:
            changed_silent, self._hb_changed = self._hb_changed, set()
            notices += self._hb_notices
        else:
            changed_silent = await self._heartbeats(now, notices)
        if changed_inst or not self._li_map:
            self._li_map = self._map_launch_indexes()

        # jobs: recompute only those whose record or instance can have changed
        dirty = set(changed_rec) | self._lost_retry
        self._lost_retry = set()
        for iid in changed_inst | changed_silent:
            dirty |= self._by_instance.get(iid, set())
            li = self.instances.known.get(iid, {}).get("AmiLaunchIndex")
            if li is not None:
                dirty |= self._by_li.get(li, set())
        started = parse_iso(self.record.created_at) or now
        booted = (now - started).total_seconds() > self.boot_timeout
        if booted != self._booted or changed_inst or full:
            dirty |= self._unbound
        self._booted = booted
        if self.last is None:
            dirty = set(self._base) | set(self._records)
        lost: list[tuple[int, str, datetime | None]] = []
        changed_jobs: set[int] = set()
        alive = any(state_of(i) in INSTANCE_UP for i in raw_instances)
        for n in dirty:
            view = self._job_view(n, booted, alive, full, now, lost)
            old = self._views.get(n)
            if old == view:
                continue
            changed_jobs.add(n)
            self._index(n, old, view)
            if view is None:
                self._views.pop(n, None)
            else:
                self._views[n] = view

        # instances and volumes
        changed_iv = self._instance_views(changed_inst | changed_silent, reported, now, notices)
        changed_vol, self._carry_vol = self._carry_vol, set()
        changed_vol |= await self.volumes.follow(
            self.cloud, self._volume_watch(changed_inst, changed_rec)
        )
        changed_vv = set()
        for vid in changed_vol:
            raw = self.volumes.known.get(vid)
            v = volume_view(raw) if raw is not None else None
            if self._vol_views.get(vid) == v:
                continue
            changed_vv.add(vid)
            if v is None:
                self._vol_views.pop(vid, None)
            else:
                self._vol_views[vid] = v

        if lost and self.write_lost:
            for jobnr, reason, ended in lost:
                view = self._views[jobnr]
                try:
                    await self.store.mark_lost(jobnr, reason, _iso(ended))
                except Exception as exc:  # noqa: BLE001 - shown, retried on the next refresh
                    notices.append(f"could not mark job {jobnr} lost in the status store: {exc}")
                    self._lost_retry.add(jobnr)
                    continue
                self._lost_written.add((jobnr, view.attempt))
        await self._end_silent(notices)

        snap = self._snapshot(now, changed_jobs, changed_iv, changed_vv, notices)
        self.last = snap
        if (
            self.record.state == "running"
            and all_terminal(snap)
            and all(v.state == "terminated" for v in snap.instances)
            and self.record.path is not None
        ):
            await asyncio.to_thread(self._mark_ended)
        return snap

    def _since(self) -> datetime:
        assert self._mark is not None
        return self._mark - timedelta(seconds=self.overlap)

    def _apply_records(self, recs: list[JobRecord], complete: bool, now: datetime) -> set[int]:
        """Merge what the store returned into the known records; returns the job numbers whose
        record changed. Moves the high-water mark: the newest ``updated`` seen, but never past
        our own clock at the start of the read (an agent whose clock runs ahead must not push
        the window past the others' writes); the next read starts ``overlap`` before it."""
        changed: set[int] = set()
        seen = set()
        for rec in recs:
            seen.add(rec.jobnr)
            old = self._records.get(rec.jobnr)
            if old is None or (old is not rec and old != rec):
                self._records[rec.jobnr] = rec
                changed.add(rec.jobnr)
        if complete:
            for n in [n for n in self._records if n not in seen]:
                del self._records[n]
                changed.add(n)
            self._legacy_store = any(
                r.updated is None and r.status not in TERMINAL for r in self._records.values()
            )
        newest = _max_updated(recs)
        mark = now if newest is None else min(newest, now)
        if self._mark is not None and (newest is None or mark < self._mark):
            mark = self._mark
        self._mark = mark
        return changed

    def _map_launch_indexes(self) -> dict[int, str]:
        """Launch index -> instance id; a relaunch with the same index keeps the live one."""
        out: dict[int, str] = {}
        for raw in sorted(
            self.instances.known.values(),
            key=lambda x: (x.get("AmiLaunchIndex", 0), x["InstanceId"]),
        ):
            li = raw.get("AmiLaunchIndex")
            prev = out.get(li)
            if prev is None or state_of(self.instances.known[prev]) in INSTANCE_GONE:
                out[li] = raw["InstanceId"]
        return out

    def _index(self, n: int, old: JobView | None, new: JobView | None) -> None:
        if old is not None:
            if old.instance_id:
                self._by_instance.get(old.instance_id, set()).discard(n)
            if old.launchindex is not None:
                self._by_li.get(old.launchindex, set()).discard(n)
        if new is None:
            return
        if new.instance_id:
            self._by_instance.setdefault(new.instance_id, set()).add(n)
        if new.launchindex is not None:
            self._by_li.setdefault(new.launchindex, set()).add(n)

    def _job_view(
        self,
        n: int,
        booted: bool,
        alive: bool,
        full: bool,
        now: datetime,
        lost: list[tuple[int, str, datetime | None]],
    ) -> JobView | None:
        """Job ``n``'s view; a live job whose instance went (or whose agent is silent) is
        lost, and appended to ``lost`` unless that was written already."""
        base = self._base.get(n)
        rec = self._records.get(n)
        if base is None:
            if rec is None:
                return None
            base = JobView(jobnr=n, status=PENDING)  # a job the record does not know
        job = record_view(base, rec)
        known = self.instances.known
        iid = job.instance_id
        if iid is None and not self.queue and job.attempt == 1:
            iid = self._li_map.get(job.launchindex) if job.launchindex is not None else None
            if iid is not None:
                job = _replace(job, instance_id=iid)
        inst = known.get(iid) if iid else None
        self._unbound.discard(n)
        if job.status == LOST and inst is not None and job.error == cause_terminated(iid):
            # the agent said it at SIGTERM; EC2 knows why (a spot reclaim, a user's terminate)
            why = state_reason(inst)
            if why:
                job = _replace(job, error=cause_terminated(iid, why))
        if job.status in TERMINAL or self.record.state not in ("running", "ended"):
            return job
        reason: str | None = None
        ended: datetime | None = None
        if inst is not None:
            state = state_of(inst)
            why = state_reason(inst)
            if state in INSTANCE_GONE or state in STOPPED:
                ended = self.instances.ended_at(inst["InstanceId"]) or now
                if job.status == PENDING:
                    reason = cause_never_started(inst["InstanceId"], state, why)
                elif state in STOPPED:
                    reason = cause_stopped(inst["InstanceId"], why)
                else:
                    reason = cause_terminated(inst["InstanceId"], why)
            elif state == "running" and inst["InstanceId"] in self._silent:
                seconds, last_beat = self._silent[inst["InstanceId"]]
                reason = cause_silent(seconds, inst["InstanceId"])
                ended = last_beat
        else:
            self._unbound.add(n)
            if iid is not None and full and booted:
                # named by its record, but EC2 no longer lists it (gone for a while)
                reason = f"instance {iid} no longer exists and the job never finished"
            elif booted and job.status == PENDING and (not self.queue or not alive):
                if self.queue:
                    reason = "no instance of the session is left to run it"
                elif job.attempt == 1:
                    reason = f"no instance with launch index {job.launchindex} exists"
        if reason is None:
            return job
        ended = parse_iso(_iso(ended or now))  # as the store keeps it (whole seconds)
        job = _replace(job, status=LOST, error=reason, runendtime=job.runendtime or ended)
        if (n, job.attempt) not in self._lost_written:
            lost.append((n, reason, ended))
        return job

    # ---- heartbeats ----------------------------------------------------------------------

    async def poll_heartbeats(self) -> None:
        """List the heartbeats now, apart from a refresh (``heartbeats_apart``): the next refresh
        applies the silences that changed and shows the notices."""
        notices: list[str] = []
        self._hb_due = None
        try:
            self._hb_changed |= await self._heartbeats(self.clock(), notices)
        except Exception as exc:  # noqa: BLE001 - a timer's poll: the next one tries again
            notices.append(f"could not read the agents' heartbeats: {exc}")
        self._hb_notices = notices

    async def _heartbeats(self, now: datetime, notices: list[str]) -> set[str]:
        """List the heartbeats when due; returns the instances whose silence changed."""
        if self._hb_due is not None and now < self._hb_due:
            return set()
        self._hb_due = now + timedelta(seconds=self.heartbeat_every)
        try:
            listing = await list_heartbeats(
                self.cloud, self.record.bucket, self.record.session_id, now
            )
        except AwsacError as exc:
            notices.append(f"could not read the agents' heartbeats: {exc}")
            return set()
        self._hb = listing
        silent: dict[str, tuple[float, datetime]] = {}
        for iid, last in listing.beats.items():
            inst = self.instances.known.get(iid)
            if inst is None or state_of(inst) != "running":
                continue
            age = listing.age(iid) or 0.0
            interval = self._hb_interval.get(iid, self.heartbeat_interval)
            if age <= interval * self.missed_beats:
                continue
            if iid not in self._hb_interval:  # the agent's own interval is in its beat
                try:
                    beat = await read_heartbeat(
                        self.cloud, self.record.bucket, self.record.session_id, iid
                    )
                except AwsacError:
                    beat = None
                if beat is not None and beat.interval > 0:
                    self._hb_interval[iid] = float(beat.interval)
                    if age <= beat.interval * self.missed_beats:
                        continue
            silent[iid] = (age, last)
        changed = set(silent) ^ set(self._silent)
        changed |= {i for i in silent if i in self._silent and silent[i] != self._silent[i]}
        # once silent, a job's cause keeps the first figure (the view does not churn)
        self._silent = {i: self._silent.get(i, v) for i, v in silent.items()}
        return changed

    async def _end_silent(self, notices: list[str]) -> None:
        """Terminate the instances of silent agents (once each), and say so."""
        todo = [i for i in self._silent if i not in self._terminated]
        for iid in self._silent:
            seconds, _ = self._silent[iid]
            jobs = sorted(n for n in self._by_instance.get(iid, set()))
            notices.append(
                f"the agent of instance {iid} has been silent for {seconds:.0f} s on a running "
                f"instance: its unfinished jobs are lost"
                + (" and the instance is terminated" if self.terminate_silent else "")
                + (f" (jobs {', '.join(map(str, jobs))})" if jobs else "")
            )
        if not todo or not (self.write_lost and self.terminate_silent):
            return
        try:
            await terminate_instances(self.cloud, todo, "its agent is silent")
        except AwsacError as exc:
            notices.append(f"could not terminate {', '.join(todo)}: {exc}")
            return
        self._terminated.update(todo)

    # ---- instance views, volumes to watch, the snapshot -----------------------------------

    def _instance_views(
        self, changed: set[str], reported: set[str], now: datetime, notices: list[str]
    ) -> set[str]:
        """Rebuild the views of changed instances; flag silent ones (no job reported after the
        boot timeout, or a silent heartbeat). Returns the ids whose view changed."""
        out: set[str] = set()
        for iid in changed:
            raw = self.instances.known.get(iid)
            if raw is None:
                if self._inst_views.pop(iid, None) is not None:
                    out.add(iid)
                continue
            self._inst_views[iid] = instance_view(raw, self.instances.ended_at(iid))
            out.add(iid)
        listing = self._hb
        for iid, v in self._inst_views.items():
            beat_silent = iid in self._silent
            never_reported = (
                iid not in reported
                and v.launch_time is not None
                and (now - v.launch_time).total_seconds() > self.boot_timeout
            )
            silent = v.state == "running" and (beat_silent or never_reported)
            if silent and not beat_silent:
                notices.append(
                    f"instance {iid} is running but no job has reported after "
                    f"{self.boot_timeout:.0f} s; look at its console output (`awsac console "
                    f"{self.record.session_id} {iid}`)"
                )
            age = listing.age(iid) if listing is not None else None
            if v.silent != silent or v.heartbeat_age != age:
                self._inst_views[iid] = _replace(v, silent=silent, heartbeat_age=age)
                out.add(iid)
        return out

    def _volume_watch(self, changed_inst: set[str], changed_rec: set[int]) -> set[str]:
        """Instances whose volumes may have appeared or gone since the last refresh: changed
        ones, those starting a job whose snapshot has no volume there yet, and running ones
        whose jobs have all ended (their agent tears its volumes down)."""
        snaps: dict[str, set[str | None]] = {}
        for v in self.volumes.known.values():
            att = (v.get("Attachments") or [{}])[0].get("InstanceId")
            if att:
                snaps.setdefault(att, set()).add(v.get("SnapshotId"))
        watch = set(changed_inst)
        for n in changed_rec:
            rec = self._records.get(n)
            if rec is None or not rec.instance_id:
                continue
            if rec.status in ACTIVE and rec.snapshot and rec.snapshot not in ("-", ""):
                if rec.snapshot not in snaps.get(rec.instance_id, set()):
                    watch.add(rec.instance_id)
        for iid in snaps:
            raw = self.instances.known.get(iid)
            jobs = self._by_instance.get(iid)
            if raw is None or state_of(raw) != "running" or not jobs:
                continue
            if all(self._views[k].status in TERMINAL for k in jobs if k in self._views):
                watch.add(iid)
        return watch

    def _snapshot(
        self,
        now: datetime,
        changed_jobs: set[int],
        changed_inst: set[str],
        changed_vol: set[str],
        notices: list[str],
    ) -> SessionSnapshot:
        """The new snapshot: the previous one with the changed rows replaced."""
        prev = self.last
        if (
            prev is None
            or any(n not in self._positions for n in changed_jobs)
            or (len(self._views) != len(prev.jobs))
        ):
            jobs = tuple(self._views[n] for n in sorted(self._views))
            self._positions = {j.jobnr: k for k, j in enumerate(jobs)}
        elif changed_jobs:
            lst = list(prev.jobs)
            for n in changed_jobs:
                lst[self._positions[n]] = self._views[n]
            jobs = tuple(lst)
        else:
            jobs = prev.jobs
        if prev is None or changed_inst:
            instances = tuple(
                sorted(self._inst_views.values(), key=lambda v: (v.launchindex or 0, v.instance_id))
            )
        else:
            instances = prev.instances
        if prev is None or changed_vol:
            volumes = tuple(self._vol_views[k] for k in sorted(self._vol_views))
        else:
            volumes = prev.volumes
        return SessionSnapshot(
            session_id=self.record.session_id,
            cloud=self.record.cloud.describe(),
            taken_at=now,
            jobs=jobs,
            instances=instances,
            volumes=volumes,
            notices=tuple(notices),
            changes=Changes(
                jobs=frozenset(changed_jobs),
                instances=frozenset(changed_inst),
                volumes=frozenset(changed_vol),
                full=prev is None,
            ),
        )

    def _mark_ended(self) -> None:
        if records.record_path(self.record.session_id).exists():
            self.record = records.update_record(self.record, state="ended")

    async def watch(self, interval: float = 5.0) -> AsyncIterator[SessionSnapshot]:
        """Snapshots every ``interval`` seconds until every job is terminal."""
        while True:
            snap = await self.refresh()
            yield snap
            if all_terminal(snap):
                return
            await asyncio.sleep(interval)


T = TypeVar("T")


class MonitorPool:
    """Monitors on a thread of their own: one event loop there, one Cloud per cloud profile.

    The TUI's event loop only awaits the results (``await pool.refresh(record)``), so that the
    calls, botocore's parsing of the answers and the merge never run on it. Each monitor's
    heartbeats are listed by a timer of its own on that loop (every ``heartbeat_every``), not by
    the refreshes. Close with ``await pool.aclose()``.
    """

    def __init__(self, **monitor_kw: Any) -> None:
        self.monitor_kw = monitor_kw
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._clouds: dict[Any, Cloud] = {}
        self._monitors: dict[str, Monitor] = {}
        self._beats: dict[str, asyncio.Task[None]] = {}
        self._lock = threading.Lock()

    def _start(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                self._thread = threading.Thread(target=run, name="awsac-monitor", daemon=True)
                self._thread.start()
                ready.wait()
                self._loop = loop
            return self._loop

    async def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        loop = self._start()
        fut: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return await asyncio.wrap_future(fut)
        except asyncio.CancelledError:
            fut.cancel()
            raise

    async def _cloud(self, profile: Any) -> Cloud:
        cloud = self._clouds.get(profile)
        if cloud is None:
            cloud = Cloud(profile)
            await cloud.__aenter__()
            self._clouds[profile] = cloud
        return cloud

    async def _monitor(self, record: SessionRecord) -> Monitor:
        mon = self._monitors.get(record.session_id)
        if mon is None:
            cloud = await self._cloud(record.cloud)
            mon = Monitor(record, cloud, heartbeats_apart=True, **self.monitor_kw)
            self._monitors[record.session_id] = mon
            self._beats[record.session_id] = asyncio.create_task(self._beat(mon))
        return mon

    @staticmethod
    async def _beat(mon: Monitor) -> None:
        """The monitor's heartbeat poll, every ``heartbeat_every`` (0.5 s at least)."""
        while True:
            await asyncio.sleep(max(0.5, mon.heartbeat_every))
            await mon.poll_heartbeats()

    async def refresh(self, record: SessionRecord) -> SessionSnapshot:
        """One refresh of the session's monitor (made on first use), run on the pool's thread."""

        async def one() -> SessionSnapshot:
            return await (await self._monitor(record)).refresh()

        return await self._run(one())

    async def call(self, profile: Any, fn: Callable[[Cloud], Coroutine[Any, Any, T]]) -> T:
        """``await fn(cloud)`` on the pool's thread, with its Cloud for ``profile``: any verb
        (the TUI runs every cloud call here, so botocore's parsing never holds its loop)."""

        async def one() -> T:
            return await fn(await self._cloud(profile))

        return await self._run(one())

    def forget(self, session_id: str) -> None:
        """Drop a session's monitor (its next refresh starts from a full read)."""
        self._monitors.pop(session_id, None)
        beat = self._beats.pop(session_id, None)
        if beat is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(beat.cancel)

    def force_full(self, session_id: str) -> None:
        mon = self._monitors.get(session_id)
        if mon is not None:
            mon.force_full()

    async def aclose(self) -> None:
        loop = self._loop
        if loop is None:
            return

        async def close() -> None:
            beats = list(self._beats.values())
            self._beats.clear()
            for beat in beats:
                beat.cancel()
            await asyncio.gather(*beats, return_exceptions=True)
            for cloud in self._clouds.values():
                with contextlib.suppress(Exception):
                    await cloud.close()
            self._clouds.clear()
            self._monitors.clear()

        with contextlib.suppress(Exception):
            await self._run(close())
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5.0)
        loop.close()
        self._loop = None
        self._thread = None
