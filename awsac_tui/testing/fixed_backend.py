"""FixedBackend: a deterministic in-memory Backend (frozen clock, fixed ids, no I/O) and its
fixture data, for snapshot tests, screenshots and benchmarks. The app never imports it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from awsac_agent import assignment, s3layout
from awsac_agent.errors import AwsacError, FormatError, join_problems
from awsac_agent.jobscfg import JobLine, expand_jobs
from awsac_agent.status import TERMINAL

from awsac_tui.session import (
    ComposeChoices,
    ImageInfo,
    InstanceTypeInfo,
    Quota,
    SnapshotInfo,
    StartPlan,
)
from awsac_tui.spec import CloudProfile, SessionSpec
from awsac_tui.ui.backend import ConfirmCallback, ProgressCallback, SessionSummary, summarize
from awsac_tui.views import AttemptView, InstanceView, JobView, SessionSnapshot, VolumeView

FIXED_NOW = datetime(2008, 12, 15, 17, 1, 0, tzinfo=UTC)
FIXED_CLOUD = "local (127.0.0.1:43125)"
SNAP_ATLAS = "snap-9fd4a2f0"
SNAP_CALIB = "snap-1b2c3d4e"
SNAP_IMAGE_ROOT = "snap-0a7e11c2"  # the image's root snapshot: not one of ours

FIXED_CHOICES = ComposeChoices(
    snapshots=(
        SnapshotInfo(SNAP_ATLAS, "ATLAS 14.2.10 software"),
        SnapshotInfo(SNAP_CALIB, "calibration data 2008"),
    ),
    images=(ImageInfo("ami-0abc1234", "awsac-local"), ImageInfo("ami-0def5678", "awsac-2008")),
    instance_types=(
        InstanceTypeInfo("c5.large", 2, 0.085),
        InstanceTypeInfo("c5.xlarge", 4, 0.17),
        InstanceTypeInfo("c5.2xlarge", 8, 0.34),
        InstanceTypeInfo("m1.small", 1, 0.10),
    ),
    key_pairs=("mykey", "lab"),
    buckets=("atlassessions",),
)


LOST_CAUSE = (
    "instance {} terminated from outside while the job ran "
    "(state reason: Client.UserInitiatedShutdown: User initiated shutdown)"
)


def _t(minutes: float) -> datetime:
    """FIXED_NOW minus ``minutes``."""
    return FIXED_NOW - timedelta(minutes=minutes)


def _instance(n: int, li: int, state: str, launched: float, silent: bool = False) -> InstanceView:
    return InstanceView(
        instance_id=f"i-{0x33F64F5A + n:08x}",
        launchindex=li,
        state=state,
        instance_type=None,
        zone="us-east-1b",
        public_dns=f"ec2-75-101-{200 + n % 50}-{10 + li % 200}.compute-1.amazonaws.com"
        if state == "running"
        else None,
        launch_time=_t(launched),
        silent=silent,
    )


def _eventgen() -> tuple[SessionSnapshot, SessionSummaryMeta]:
    sid = "081215_1646--eventgen--1816"
    i0 = _instance(0, 0, "running", 14.5)
    i1 = _instance(1, 1, "running", 14.4)
    jobs = (
        JobView(
            1,
            "finished",
            i0.instance_id,
            0,
            "gen_30.sh",
            SNAP_ATLAS,
            0,
            _t(12),
            _t(10.5),
            _t(10.5),
            _t(10.4),
        ),
        JobView(
            2, "saving", i0.instance_id, 0, "gen_30.sh", SNAP_ATLAS, 0, _t(11.9), _t(0.3), _t(0.3)
        ),
        JobView(3, "running", i1.instance_id, 1, "gen_1000.sh", SNAP_ATLAS, None, _t(11.4)),
        JobView(4, "running", i1.instance_id, 1, "gen_1000.sh", SNAP_ATLAS, None, _t(11.3)),
    )
    vols = (  # each instance's root volume (the image's snapshot) and its job volume
        VolumeView("vol-0c41d2e5", SNAP_IMAGE_ROOT, "in-use", i0.instance_id, "/dev/sda1", 8),
        VolumeView("vol-0c41d2e6", SNAP_IMAGE_ROOT, "in-use", i1.instance_id, "/dev/sda1", 8),
        VolumeView("vol-92e4b1f3", SNAP_ATLAS, "in-use", i0.instance_id, "/dev/sdh", 8),
        VolumeView("vol-95e4b1f7", SNAP_ATLAS, "in-use", i1.instance_id, "/dev/sdh", 8),
    )
    snap = SessionSnapshot(sid, FIXED_CLOUD, FIXED_NOW, jobs, (i0, i1), vols)
    return snap, SessionSummaryMeta(_t(15), "c5.large", 2, 0.085)


def _mixed() -> tuple[SessionSnapshot, SessionSummaryMeta]:
    sid = "081215_1650--mixed--a3f0"
    i0 = _instance(10, 0, "running", 10)
    i1 = replace(
        _instance(11, 1, "terminated", 10),
        state_reason="Client.UserInitiatedShutdown: User initiated shutdown",
        ended_at=_t(6),
    )
    i2 = _instance(12, 2, "running", 9.5, silent=True)
    ids = [i0.instance_id, i1.instance_id, i2.instance_id]
    lost = JobView(
        6, "lost", ids[1], 1, "calib.sh", SNAP_CALIB, None, _t(7.5), error=LOST_CAUSE.format(ids[1])
    )
    jobs = [
        JobView(1, "finished", ids[0], 0, "reco.sh", SNAP_ATLAS, 0, _t(8), _t(5), _t(5), _t(4.8)),
        JobView(
            2, "failed", ids[0], 0, "reco.sh", SNAP_ATLAS, 3, _t(8), _t(6), error="exit code 3"
        ),
        JobView(3, "killed", ids[0], 0, "reco.sh", SNAP_ATLAS, -15, _t(7.9), _t(2)),
        JobView(4, "running", ids[0], 0, "reco.sh", SNAP_ATLAS, None, _t(7.8)),
        replace(
            lost,
            jobnr=5,
            attempt=2,
            history=(
                AttemptView(
                    1,
                    "lost",
                    "i-0badc0de",
                    _t(9.9),
                    _t(9.1),
                    "spot interruption notice at 16:51:54Z for instance i-0badc0de",
                ),
            ),
        ),
        lost,
        JobView(
            7, "finished", ids[1], 1, "calib.sh", SNAP_CALIB, 0, _t(7.4), _t(6.1), _t(6.1), _t(6)
        ),
        JobView(
            8,
            "lost",
            ids[1],
            1,
            "calib.sh",
            SNAP_CALIB,
            None,
            _t(7.4),
            error=LOST_CAUSE.format(ids[1]),
        ),
        JobView(9, "pending", None, 2, "calib.sh", SNAP_CALIB),
        JobView(10, "pending", None, 2, "calib.sh", SNAP_CALIB),
    ]
    vols = (
        VolumeView("vol-a1b2c3d4", SNAP_ATLAS, "in-use", ids[0], "/dev/sdh", 8),
        VolumeView("vol-a1b2c3d5", SNAP_CALIB, "deleting", None, None, 4),
    )
    snap = SessionSnapshot(
        sid,
        FIXED_CLOUD,
        FIXED_NOW,
        tuple(jobs),
        (i0, i1, i2),
        vols,
        notices=("i-33f64f66 is silent: running for 9m30s without any job status",),
    )
    return snap, SessionSummaryMeta(_t(11), "c5.xlarge", 3, 0.17)


def big_snapshot(n_jobs: int = 1000, cpi: int = 8, tick: int = 0) -> SessionSnapshot:
    """A synthetic session of ``n_jobs`` jobs; ``tick`` advances job states deterministically."""
    sid = "081215_1600--big--0b1d"
    n_inst = assignment.n_instances(n_jobs, cpi)
    instances = tuple(_instance(100 + li, li, "running", 61) for li in range(n_inst))
    jobs = []
    for jobnr in range(1, n_jobs + 1):
        li = assignment.instance_for_job(jobnr, cpi)
        iid = instances[li].instance_id
        phase = (jobnr * 7 + tick) % 10
        start = _t(60 - (jobnr % 17))
        if phase < 5:
            jobs.append(
                JobView(
                    jobnr,
                    "finished",
                    iid,
                    li,
                    "sim.sh",
                    SNAP_ATLAS,
                    0,
                    start,
                    _t(20),
                    _t(20),
                    _t(19),
                )
            )
        elif phase < 8:
            jobs.append(JobView(jobnr, "running", iid, li, "sim.sh", SNAP_ATLAS, None, start))
        elif phase < 9:
            jobs.append(
                JobView(jobnr, "saving", iid, li, "sim.sh", SNAP_ATLAS, 0, start, _t(1), _t(1))
            )
        else:
            jobs.append(
                JobView(
                    jobnr,
                    "failed",
                    iid,
                    li,
                    "sim.sh",
                    SNAP_ATLAS,
                    1,
                    start,
                    _t(5),
                    error="exit code 1",
                )
            )
    vols = tuple(
        VolumeView(
            f"vol-{0xB0000000 + li:08x}", SNAP_ATLAS, "in-use", inst.instance_id, "/dev/sdh", 8
        )
        for li, inst in enumerate(instances)
    )
    return SessionSnapshot(sid, FIXED_CLOUD, FIXED_NOW, tuple(jobs), instances, vols)


@dataclass(frozen=True)
class SessionSummaryMeta:
    created: datetime
    instance_type: str
    n_instances: int
    hourly_price: float | None


FIXED_LOG = "\n".join(
    ["ATLAS JOB BEGIN: gen 1000 events", "Mon Dec 15 16:49:39 UTC 2008", "====="]
    + [f"generating event {i}/1000 ..." for i in range(1, 413)]
)
FIXED_CONSOLE = "\n".join(
    [
        "awsac-autorun: reading user-data",
        "awsac-autorun: session 081215_1646--eventgen--1816, 2 cores per instance",
        "awsac-autorun: fetching sessionarchive.tar.bz2",
        "processjobs: launch index 1 runs jobs 3 4",
        "processjobs: creating volume from snap-9fd4a2f0",
        "processjobs: job 3 running",
        "processjobs: job 4 running",
    ]
)


@dataclass
class FixedBackend:
    """Deterministic in-memory backend: frozen clock, fixed ids, no I/O.

    Tests change ``snapshots`` (or set ``fail_refresh``) to simulate ticks and failures;
    every verb call is appended to ``calls``.
    """

    snapshots: dict[str, SessionSnapshot] = field(default_factory=dict)
    meta: dict[str, SessionSummaryMeta] = field(default_factory=dict)
    choices: ComposeChoices = FIXED_CHOICES
    clock: datetime = FIXED_NOW
    fail_refresh: bool = False
    calls: list[tuple] = field(default_factory=list)
    logs: dict[int, str] = field(default_factory=dict)
    start_session_id: str = "081215_1701--eventgen--5e1f"
    cleaned: set[str] = field(default_factory=set)
    cloud_problem: str | None = None
    """What ``probe_cloud`` answers (None: the cloud answers); ``start_local_cloud`` clears it."""
    max_attempts: int = 3
    quota: Quota | None = None

    @classmethod
    def demo(cls, with_big: bool = True) -> FixedBackend:
        """The standard fixed data: an eventgen session, a mixed one, and (optionally) 1,000 jobs."""
        backend = cls()
        for snap, meta in (_eventgen(), _mixed()):
            backend.snapshots[snap.session_id] = snap
            backend.meta[snap.session_id] = meta
        if with_big:
            big = big_snapshot()
            backend.snapshots[big.session_id] = big
            backend.meta[big.session_id] = SessionSummaryMeta(_t(61), "c5.2xlarge", 125, 0.34)
        return backend

    def now(self) -> datetime:
        return self.clock

    def cloud_description(self) -> str:
        return FIXED_CLOUD

    def compose_cloud(self) -> CloudProfile:
        return CloudProfile(local=True)

    async def probe_cloud(self) -> str | None:
        self.calls.append(("probe_cloud",))
        return self.cloud_problem

    async def start_local_cloud(self) -> str:
        self.calls.append(("start_local_cloud",))
        self.cloud_problem = None
        return FIXED_CLOUD

    async def make_snapshot(self, directory: Path, description: str) -> str:
        self.calls.append(("make_snapshot", directory, description))
        snap_id = f"snap-{len(self.choices.snapshots) + 0xA3451E97:08x}"
        info = SnapshotInfo(snap_id, description or directory.name)
        self.choices = replace(self.choices, snapshots=(info, *self.choices.snapshots))
        return snap_id

    async def account_quota(self) -> Quota | None:
        return self.quota

    async def check_references(
        self, spec: SessionSpec, jobs: Sequence[JobLine], spec_dir: Path
    ) -> list[str]:
        self.calls.append(("check_references", spec.image_id, tuple(jobs)))
        await asyncio.sleep(0)
        problems = []
        if spec.image_id not in {i.image_id for i in self.choices.images}:
            problems.append(
                f"session.toml: image_id {spec.image_id!r} does not exist on {FIXED_CLOUD} "
                "(pick one of the cloud's images)"
            )
        have = {s.snapshot_id for s in self.choices.snapshots}
        for jl in jobs:
            if jl.snapshot and jl.snapshot not in have:
                problems.append(
                    f"jobs.cfg, line {jl.lineno}: snapshot {jl.snapshot} does not exist on "
                    f"{FIXED_CLOUD} (make one with `awsac local snapshot DIR`, or pick one the "
                    "cloud has)"
                )
        return problems

    async def list_sessions(self) -> list[SessionSummary]:
        self.calls.append(("list_sessions",))
        out = []
        for sid, snap in self.snapshots.items():
            meta = self.meta.get(sid) or SessionSummaryMeta(
                self.clock, "?", len(snap.instances), None
            )
            out.append(
                summarize(
                    snap,
                    created=meta.created,
                    instance_type=meta.instance_type,
                    n_instances=meta.n_instances,
                    hourly_price=meta.hourly_price,
                    now=self.clock,
                    cleaned=sid in self.cleaned,
                )
            )
            out[-1] = replace(out[-1], state="cleaned" if sid in self.cleaned else "running")
        out.sort(key=lambda s: s.created, reverse=True)
        return out

    async def refresh(self, session_id: str) -> SessionSnapshot:
        self.calls.append(("refresh", session_id))
        if self.fail_refresh:
            raise AwsacError("status store throttled (RequestLimitExceeded); retrying")
        try:
            return self.snapshots[session_id]
        except KeyError:
            raise AwsacError(
                f"no session record for {session_id} (see the sessions screen)"
            ) from None

    async def compose_choices(self) -> ComposeChoices:
        return self.choices

    async def start(
        self,
        spec: SessionSpec,
        jobs: Sequence[JobLine],
        spec_dir: Path,
        progress: ProgressCallback,
        confirm: ConfirmCallback,
    ) -> str | None:
        self.calls.append(("start", spec.shortdescr, tuple(jobs)))
        problems = await self.check_references(spec, jobs, spec_dir)
        if problems:
            raise FormatError(join_problems(problems), problems)
        cpi = next(
            (t.vcpus for t in self.choices.instance_types if t.name == spec.instance_type), 1
        )
        if spec.jobs_per_instance:
            cpi = min(cpi, spec.jobs_per_instance)
        n = sum(j.count for j in jobs)
        sid = self.start_session_id
        progress("uploading session archive", 0.5)
        await asyncio.sleep(0)
        archive = s3layout.DEFAULT_ARCHIVE_NAME
        plan = StartPlan(
            spec=spec,
            spec_path=spec_dir / "session.toml",
            job_lines=tuple(jobs),
            archive_path=spec_dir / archive,
            archive_name=archive,
            archive_note=None,
            vcpus=cpi,
            cores_per_instance=cpi,
            n_jobs=n,
            n_instances=assignment.n_instances(n, cpi),
            unused_cores=assignment.unused_cores(n, cpi),
            session_id=sid,
            userdata=f"{sid};{spec.bucket};{archive};{cpi}",
            cloud=spec.cloud,
        )
        if not await confirm(plan):
            return None
        progress("running instances", 1.0)
        instances = tuple(
            InstanceView(
                f"i-5e1f{li:04x}", li, "pending", spec.instance_type, None, None, self.clock
            )
            for li in range(plan.n_instances)
        )
        self.snapshots[sid] = SessionSnapshot(
            sid,
            FIXED_CLOUD,
            self.clock,
            tuple(
                JobView(
                    j.jobnr,
                    "pending",
                    None,
                    assignment.instance_for_job(j.jobnr, cpi),
                    j.script,
                    j.snapshot,
                )
                for j in expand_jobs(list(jobs))
            ),
            instances,
        )
        self.meta[sid] = SessionSummaryMeta(self.clock, spec.instance_type, plan.n_instances, None)
        return sid

    async def kill_job(self, session_id: str, jobnr: int) -> None:
        self.calls.append(("kill_job", session_id, jobnr))
        snap = self.snapshots[session_id]
        jobs = tuple(
            replace(j, status="killed", returncode=-15, runendtime=self.clock)
            if j.jobnr == jobnr and j.status not in TERMINAL
            else j
            for j in snap.jobs
        )
        self.snapshots[session_id] = replace(snap, jobs=jobs)

    async def retry(self, session_id: str, jobs: Sequence[int] | None = None) -> list[int]:
        self.calls.append(("retry", session_id, tuple(jobs or ())))
        snap = self.snapshots[session_id]
        wanted = set(jobs or [j.jobnr for j in snap.jobs if j.status == "lost"])
        out = []
        new_jobs = []
        for j in snap.jobs:
            if j.jobnr in wanted and j.status == "lost":
                entry = AttemptView(
                    j.attempt, j.status, j.instance_id, j.runstarttime, j.runendtime, j.error
                )
                j = replace(
                    j,
                    status="pending",
                    instance_id=None,
                    returncode=None,
                    runstarttime=None,
                    runendtime=None,
                    error=None,
                    attempt=j.attempt + 1,
                    history=(*j.history, entry),
                )
                out.append(j.jobnr)
            new_jobs.append(j)
        self.snapshots[session_id] = replace(snap, jobs=tuple(new_jobs))
        return out

    def instance_state(self, session_id: str, instance_id: str) -> str | None:
        snap = self.snapshots.get(session_id)
        inst = snap.instance(instance_id) if snap else None
        return inst.state if inst else None

    def session_state(self, session_id: str) -> str:
        return "cleaned" if session_id in self.cleaned else "running"

    def retry_policy(self, session_id: str) -> tuple[int, bool]:
        return self.max_attempts, False

    def results_location(self, session_id: str, jobnr: int) -> str:
        return f"s3://atlassessions/{s3layout.results_key(session_id, jobnr)}"

    async def terminate_instance(self, session_id: str, instance_id: str) -> None:
        self.calls.append(("terminate_instance", session_id, instance_id))
        snap = self.snapshots[session_id]
        inst = tuple(
            replace(i, state="shutting-down", public_dns=None)
            if i.instance_id == instance_id
            else i
            for i in snap.instances
        )
        self.snapshots[session_id] = replace(snap, instances=inst)

    async def console_output(self, session_id: str, instance_id: str) -> str:
        self.calls.append(("console_output", session_id, instance_id))
        return FIXED_CONSOLE

    async def job_log(self, session_id: str, jobnr: int) -> str:
        self.calls.append(("job_log", session_id, jobnr))
        return self.logs.get(jobnr, FIXED_LOG)

    async def results(self, session_id: str, dest: Path, progress: ProgressCallback) -> list[Path]:
        self.calls.append(("results", session_id, dest))
        snap = self.snapshots.get(session_id)
        done = [j for j in snap.jobs if j.status == "finished"] if snap else []
        out = []
        for k, job in enumerate(done, 1):
            progress(f"results_job_{job.jobnr}.tar.bz2", k / len(done))
            out.append(dest / session_id / f"results_job_{job.jobnr}.tar.bz2")
            await asyncio.sleep(0)
        return out

    async def cleanup_plan(self, session_id: str) -> str:
        self.calls.append(("cleanup_plan", session_id))
        snap = self.snapshots.get(session_id)
        lines = [f"left of session {session_id}:"]
        if snap:
            lines += [
                f"  instance {i.instance_id}" for i in snap.instances if i.state != "terminated"
            ]
            lines += [f"  volume {v.volume_id}" for v in snap.volumes]
        return "\n".join(lines)

    async def cleanup(self, session_id: str) -> list[str]:
        self.calls.append(("cleanup", session_id))
        snap = self.snapshots.get(session_id)
        removed: list[str] = []
        if snap:
            removed += [
                f"instance {i.instance_id}" for i in snap.instances if i.state != "terminated"
            ]
            removed += [f"volume {v.volume_id}" for v in snap.volumes]
            self.snapshots[session_id] = replace(
                snap,
                instances=tuple(
                    replace(i, state="terminated", public_dns=None) for i in snap.instances
                ),
                volumes=(),
            )
        removed.append(f"status domain {session_id}")
        self.cleaned.add(session_id)
        return removed

    async def ssh_command(self, session_id: str, instance_id: str) -> list[str]:
        snap = self.snapshots.get(session_id)
        inst = snap.instance(instance_id) if snap else None
        host = (inst.public_dns if inst else None) or instance_id
        return ["ssh", "-i", "~/.ssh/mykey.pem", f"ec2-user@{host}"]
