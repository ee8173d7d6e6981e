"""awsac-processjobs: the worker on each instance (plan, volumes, run, save, tear down, terminate).

Shipped in every session archive as ``awsac-processjobs.pyz``; ``main`` is the zipapp entry point.

The worker's loop (the main thread) only starts, watches and signals job processes; it never
waits for the cloud. Cloud I/O runs on threads of its own: status records go through the
``StatusWriter``, saves through a pool, queue-mode claims and volume bring-ups through their own
threads, and three tickers read the control objects (kill requests, live-log watch flags), write
the heartbeat and, on spot instances, poll the interruption notice. So a store outage delays
records and never a kill, a timeout or a job's end.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, Callable, Dict, List, Optional, Sequence, Tuple

from boto3.s3.transfer import S3Transfer, TransferConfig
from botocore.exceptions import WaiterError

from . import faults, s3checksum, s3layout
from .agentlog import AgentLog
from .archive import JOBS_CFG, bundle_log
from .assignment import QUEUE, jobs_for_instance, jobs_from_list, n_instances
from .autorun import DEFAULT_WORK_DIR, JOBS_DIR, SESSION_INFO_DIR, SESSION_INFO_FILE
from .aws import Clients
from .devices import DeviceProvider, provider_from_env
from .errors import AwsacError, FormatError
from .imds import Imds
from .jobscfg import Job, expand_jobs, read_jobs_cfg
from .jobscope import JobScopes, unit_name
from .redact import redact
from .retry import describe
from .sessionid import SESSION_TAG
from .status import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_STORE,
    FAILED,
    FINISHED,
    HB_DRAINING,
    HB_INTERRUPTED,
    HB_RUNNING,
    HB_STARTING,
    HB_TEARDOWN,
    HEARTBEAT_SECONDS,
    KILLED,
    LOST,
    PENDING,
    RESULTS_NONE,
    RESULTS_SAVED,
    RUNNING,
    SAVING,
    Heartbeat,
    JobRecord,
    cause_spot_notice,
    cause_terminated,
    control_poll_seconds,
    updated_iso,
    utcnow_iso,
)
from .store import (
    Controls,
    StatusStore,
    StatusWriter,
    make_store,
    read_controls,
    write_heartbeat,
)
from .userdata import UserData, parse_userdata
from .workerargs import add_worker_arguments

QUICK_WAIT_DELAY_S = 0.25  # first looks at a new volume's state (then the configured delay)
QUICK_WAIT_ATTEMPTS = 6

RESULTS_FILE = "results.tar.bz2"
COPY_LIMIT = 5 * 1024**3  # S3's limit for a single CopyObject
TRANSFER = TransferConfig(
    multipart_threshold=16 * 1024 * 1024, multipart_chunksize=16 * 1024 * 1024
)
# S3 stores the whole-object CRC32 of every upload (the client compares downloads with it)
UPLOAD_ARGS = s3checksum.upload_args(S3Transfer.ALLOWED_UPLOAD_ARGS)


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass(frozen=True)
class Settings:
    """Where the worker works and how often it looks; from the environment and the command line.

    Every interval is a knob (``AWSAC_*_SECONDS``) so that tests need not wait real time.
    """

    work_dir: Path
    session_dir: Path
    poll_seconds: float = 5.0  # control reads (kills, watch flags) at a small session
    kill_grace_seconds: float = 10.0
    volume_timeout_seconds: float = 300.0
    waiter_delay_seconds: float = 5.0
    live_tail_bytes: int = 64 * 1024
    keep_instance: bool = False
    keep_instance_on_failure_min: float = 0.0
    status_flush_seconds: float = 300.0  # at the end: how long unsent records are tried
    heartbeat_seconds: float = HEARTBEAT_SECONDS
    spot_poll_seconds: float = 5.0
    coalesce_seconds: float = 2.0  # a status record waits that long for a newer one
    writer_retry_seconds: float = 1.0  # first wait before a failed write is sent again
    shutdown_seconds: float = 20.0  # SIGTERM: time for lost records and partial logs
    tick_seconds: float = 0.1  # the loop's own pace

    @property
    def session_info_dir(self) -> Path:
        return self.work_dir / SESSION_INFO_DIR

    @property
    def session_info_file(self) -> Path:
        return Path(os.environ.get("SessionInfoFile") or self.session_info_dir / SESSION_INFO_FILE)

    @property
    def jobs_dir(self) -> Path:
        return self.work_dir / JOBS_DIR

    @property
    def volumes_dir(self) -> Path:
        return self.work_dir / "volumes"

    @classmethod
    def from_env(cls, args: argparse.Namespace) -> "Settings":
        work = Path(os.environ.get("AWSAC_WORK_DIR") or DEFAULT_WORK_DIR)
        session = Path(args.session_dir or os.environ.get("AWSACworkingDir") or Path.cwd())
        return cls(
            work_dir=work.resolve(),
            session_dir=session.resolve(),
            poll_seconds=max(0.05, _env_float("AWSAC_POLL_SECONDS", 5.0)),
            kill_grace_seconds=_env_float("AWSAC_KILL_GRACE_SECONDS", 10.0),
            volume_timeout_seconds=_env_float("AWSAC_VOLUME_TIMEOUT_SECONDS", 300.0),
            waiter_delay_seconds=max(0.1, _env_float("AWSAC_WAITER_DELAY_SECONDS", 5.0)),
            live_tail_bytes=int(_env_float("AWSAC_LIVE_TAIL_BYTES", 64 * 1024)),
            status_flush_seconds=_env_float("AWSAC_STATUS_FLUSH_SECONDS", 300.0),
            heartbeat_seconds=max(0.05, _env_float("AWSAC_HEARTBEAT_SECONDS", HEARTBEAT_SECONDS)),
            spot_poll_seconds=max(0.05, _env_float("AWSAC_SPOT_POLL_SECONDS", 5.0)),
            coalesce_seconds=max(0.0, _env_float("AWSAC_STATUS_COALESCE_SECONDS", 2.0)),
            writer_retry_seconds=max(0.01, _env_float("AWSAC_RETRY_BASE_SECONDS", 1.0)),
            shutdown_seconds=max(1.0, _env_float("AWSAC_SHUTDOWN_SECONDS", 20.0)),
            keep_instance=bool(args.keep_instance),
            keep_instance_on_failure_min=float(args.keep_instance_on_failure or 0.0),
        )


@dataclass
class Volume:
    """A volume this worker creates from one snapshot, and how far it got."""

    snapshot: str
    device_name: str
    mountpoint: Path
    volume_id: Optional[str] = None
    attached: bool = False
    mounted: bool = False
    error: Optional[str] = None
    ready: bool = False


@dataclass
class RunningJob:
    """A job's process while it runs (one attempt of the job)."""

    job: Job
    record: JobRecord  # its running record (attempt, times, instance)
    proc: "subprocess.Popen[bytes]"
    job_dir: Path
    log_path: Path
    log_handle: IO[bytes]
    started: float
    end_reason: Optional[str] = None  # None, "killed" or "timeout"
    term_sent: Optional[float] = None
    kill_sent: bool = False
    live_size: int = -1
    timeout_reason: Optional[str] = None
    scope: str = ""  # its systemd scope's unit name (unused where there are no scopes)


@dataclass
class Outcome:
    """What happened to a job, for the summary."""

    jobnr: int
    status: str
    returncode: Optional[int] = None
    seconds: float = 0.0
    error: Optional[str] = None
    attempt: int = 1


@dataclass
class ClaimResult:
    """What one claim round of the claim thread brought back."""

    claimed: List[JobRecord]
    empty: bool  # nothing was claimable
    error: Optional[str] = None


def read_session_info(settings: Settings, imds: Imds) -> UserData:
    """The user-data string from the session info file (or, if missing, from the metadata)."""
    path = settings.session_info_file
    if path.is_file():
        text = path.read_text(encoding="utf-8")
        source = str(path)
    else:
        text = imds.user_data() or ""
        source = "instance user-data"
    ud = parse_userdata(text)
    if ud is None:
        raise FormatError(
            f"{source}: not an awsac session string (session_id;bucket;archive;cores)"
        )
    return ud


class Ticker:
    """Runs ``fn`` every ``interval`` seconds on a daemon thread until stopped; errors are logged."""

    def __init__(
        self, name: str, interval: float, fn: Callable[[], None], log: AgentLog, first: float = 0.0
    ) -> None:
        self.name = name
        self.interval = interval
        self.fn = fn
        self.log = log
        self.first = first
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        if self._stop.wait(self.first):
            return
        while True:
            try:
                self.fn()
            except Exception as exc:  # noqa: BLE001 - the next round tries again
                self.log(f"  {self.name}: {describe(exc)}")
            if self._stop.wait(self.interval):
                return

    def stop(self) -> None:
        self._stop.set()


class Worker:
    """One run of processjobs on one instance."""

    def __init__(
        self,
        settings: Settings,
        log: AgentLog,
        imds: Optional[Imds] = None,
        clients: Optional[Clients] = None,
        provider: Optional[DeviceProvider] = None,
    ) -> None:
        self.s = settings
        self.log = log
        self.imds = imds or Imds()
        self._clients = clients
        self._provider = provider
        self.ud: Optional[UserData] = None
        self.instance_id: Optional[str] = None
        self.launch_index: Optional[int] = None
        self.zone: Optional[str] = None
        self.store: Optional[StatusStore] = None
        self.writer: Optional[StatusWriter] = None
        self.all_jobs: Dict[int, Job] = {}
        self.jobs: List[Job] = []  # static: this instance's jobs
        self.queue_mode = False
        self.claims_needed = False  # static with a job list (a retry): claim each job first
        self.known: Dict[int, JobRecord] = {}  # records read from the store (attempt, history)
        self.volumes: Dict[str, Volume] = {}
        self.running: Dict[int, RunningJob] = {}
        self.saving: Dict[int, "Future[None]"] = {}
        self.waiting: Dict[int, JobRecord] = {}  # claimed, waiting for their volume
        self.outcomes: Dict[int, Outcome] = {}
        self.failure: Optional[str] = None
        self.started = time.monotonic()
        self.controls = Controls()
        self.interruption: Optional[str] = None  # the cause, once EC2 said the instance goes
        self.draining: Optional[str] = None  # why no new job starts
        self.hb_state = HB_STARTING
        self.beats = 0
        self.spot = False
        self.ending = False  # set before this worker terminates its own instance
        self._tickers: List[Ticker] = []
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="io")
        self._saver: Optional[ThreadPoolExecutor] = None
        self.scopes: JobScopes  # set up with the store (it asks systemd once)
        self._claim: Optional["Future[ClaimResult]"] = None
        self._claim_empty = False
        self._claim_after = 0.0
        self._claim_failures = 0
        self._rng = random.Random()
        self._volume_futures: Dict[str, "Future[None]"] = {}

    # ---- helpers -------------------------------------------------------------------------
    @property
    def clients(self) -> Clients:
        if self._clients is None:
            self._clients = Clients(
                os.environ.get("AWS_DEFAULT_REGION") or self.imds.region(), log=self.log
            )
        return self._clients

    @property
    def provider(self) -> DeviceProvider:
        if self._provider is None:
            self._provider = provider_from_env(self.imds)
        return self._provider

    @property
    def session_id(self) -> str:
        assert self.ud is not None
        return self.ud.session_id

    @property
    def cores(self) -> int:
        return self.ud.cores_per_instance if self.ud else 1

    def submit(self, record: JobRecord, urgent: bool = False) -> None:
        """Hand a record to the background writer (never blocks)."""
        if self.writer is None:  # before the plan made one (SIGTERM during the plan)
            self.log(f"  status job{record.jobnr}: {record.status} not written (no store yet)")
            return
        self.writer.submit(record, urgent=urgent)

    def new_record(self, job: Job, status: str, attempt: int, **attrs: Any) -> JobRecord:
        """A record of ``job`` as this instance writes it (history carried from the store)."""
        known = self.known.get(job.jobnr)
        return JobRecord(
            jobnr=job.jobnr,
            status=status,
            instance_id=self.instance_id,
            launchindex=self.launch_index,
            shellscript=job.script,
            snapshot=job.snapshot,
            attempt=attempt,
            history=known.history if known is not None and known.attempt <= attempt else None,
            **attrs,
        )

    def fault_step(self, step: str, elapsed: float = 0.0) -> None:
        """Carry out the injected agent faults due at ``step`` (tests; see faults.py)."""
        for rule in faults.plan().step_rules(step, elapsed):
            if rule.operation == "kill":
                self.log(f"# injected fault: killing the worker (SIGKILL) at step '{step}'")
                os.kill(os.getpid(), signal.SIGKILL)
            elif rule.operation == "interrupt":
                self.log(f"# injected fault: interrupting this instance at step '{step}'")
                iid = self.instance_id or self.imds.instance_id()
                import boto3

                from .aws import endpoint_url

                boto3.session.Session(region_name=self.clients.region).client(
                    "ec2", endpoint_url=endpoint_url("ec2")
                ).terminate_instances(InstanceIds=[iid])
                time.sleep(3600)  # the hypervisor ends us

    def upload(self, path: Path, key: str, also: Optional[str] = None) -> None:
        """Upload a file (multipart when large; botocore retries each request); ``also``: a
        server-side copy to a second key (the paper's name of the last attempt)."""
        assert self.ud is not None
        size = path.stat().st_size
        t0 = time.monotonic()
        self.log(f"  start upload {path.name} ({size} bytes) to bucket:{self.ud.bucket} key:{key}")
        s3 = self.clients.s3
        s3.upload_file(str(path), self.ud.bucket, key, Config=TRANSFER, ExtraArgs=UPLOAD_ARGS)
        if also:
            source = {"Bucket": self.ud.bucket, "Key": key}
            if size < COPY_LIMIT:  # one CopyObject (the managed copy would HEAD the source first)
                s3.copy_object(CopySource=source, Bucket=self.ud.bucket, Key=also)
            else:
                s3.copy(source, self.ud.bucket, also, Config=TRANSFER)
        copied = f" (and copied to {also})" if also else ""
        self.log(f"  finished upload {key}{copied} in {time.monotonic() - t0:.1f} s")

    def n_instances(self) -> int:
        """Instances of the session, for the control polling interval."""
        assert self.ud is not None
        if self.ud.instances:
            return self.ud.instances
        listed = self.ud.jobs
        return n_instances(len(listed) if listed else len(self.all_jobs), self.cores)

    # ---- step 2: plan ----------------------------------------------------------------------
    def plan(self) -> None:
        with self.log.step("parsing the session info"):
            self.ud = read_session_info(self.s, self.imds)
            self.queue_mode = self.ud.assignment == QUEUE
            self.log(
                f"  Session ID: {self.ud.session_id} ; CoresPerInstance: {self.ud.cores_per_instance}"
                f" ; store: {self.ud.get('store', DEFAULT_STORE)} ; assignment: {self.ud.assignment}"
                f" ; reservation: {self.ud.reservation}"
            )
        with self.log.step("getting information about this instance from the metadata"):
            self.instance_id = self.imds.instance_id()
            self.launch_index = self.imds.launch_index()
            self.zone = self.imds.availability_zone()
            self._rng = random.Random(self.instance_id)
            self.log(
                f"  the ami-launch-index of this instance ({self.instance_id}) is {self.launch_index}"
            )
            self.log(f"  the Availability Zone of this instance is {self.zone}")
            self.spot = self.ud.spot or self._life_cycle() == "spot"
            if self.spot:
                self.log(
                    f"  spot instance: polling the interruption notice every "
                    f"{self.s.spot_poll_seconds:g} s"
                )
        with self.log.step(f"parsing the jobs file {self.s.session_dir / JOBS_CFG}"):
            lines = read_jobs_cfg(self.s.session_dir / JOBS_CFG)
            self.all_jobs = {j.jobnr: j for j in expand_jobs(lines)}
            if self.queue_mode:
                self.log(
                    f"  queue mode: {len(self.all_jobs)} jobs; this instance claims pending ones, "
                    f"at most {self.cores} at once"
                )
            else:
                listed = self.ud.jobs
                if listed is not None:
                    unknown = [n for n in listed if n not in self.all_jobs]
                    if unknown:
                        raise FormatError(
                            f"user-data: jobs={self.ud.get('jobs')} names job(s) {unknown} that "
                            f"{JOBS_CFG} does not have ({len(self.all_jobs)} jobs)"
                        )
                    mine = jobs_from_list(self.launch_index, self.cores, listed)
                    self.claims_needed = True
                else:
                    mine = jobs_for_instance(self.launch_index, self.cores, len(self.all_jobs))
                self.jobs = [self.all_jobs[n] for n in mine]
                self.log(f"  my job numbers are: {mine}")
                for j in self.jobs:
                    self.log(f"  job {j.jobnr}: snapshot {j.snapshot or '-'} script {j.script}")
        self.store = make_store(
            self.ud.get("store"), self.clients, self.ud.bucket, self.ud.session_id, self.log
        )
        self.writer = StatusWriter(
            self.store,
            self.log,
            coalesce=self.s.coalesce_seconds,
            retry_seconds=self.s.writer_retry_seconds,
        )
        self._saver = ThreadPoolExecutor(max_workers=self.cores, thread_name_prefix="save")
        self.scopes = JobScopes(self.log)
        self.start_tickers()

    def _life_cycle(self) -> Optional[str]:
        try:
            return self.imds.life_cycle()
        except AwsacError as exc:
            self.log(f"  instance-life-cycle not known ({exc}); taking it as on-demand")
            return None

    # ---- background: heartbeat, control, spot ------------------------------------------------
    def start_tickers(self) -> None:
        every = control_poll_seconds(self.n_instances(), self.s.poll_seconds)
        self.log(
            f"  control (kills, live-log watch) every {every:g} s; heartbeat every "
            f"{self.s.heartbeat_seconds:g} s"
        )
        self._tickers.append(Ticker("heartbeat", self.s.heartbeat_seconds, self.beat, self.log))
        # a random start spreads the session's control reads over the interval
        self._tickers.append(
            Ticker("control", every, self.read_controls, self.log, self._rng.random() * every)
        )
        if self.spot:
            self._tickers.append(
                Ticker("spot notice", self.s.spot_poll_seconds, self.check_spot, self.log)
            )

    def stop_tickers(self) -> None:
        for t in self._tickers:
            t.stop()
        self._tickers.clear()

    def beat(self, state: Optional[str] = None) -> None:
        """Write this instance's heartbeat (one object per instance, not per job)."""
        assert self.ud is not None and self.instance_id is not None
        if state:
            self.hb_state = state
        self.beats += 1
        write_heartbeat(
            self.clients.s3,
            self.ud.bucket,
            self.session_id,
            Heartbeat(
                self.instance_id,
                self.launch_index,
                updated_iso(),
                self.s.heartbeat_seconds,
                self.hb_state,
                tuple(sorted(self.running)),
                self.beats,
            ),
        )

    def beat_now(self, state: str) -> None:
        self.hb_state = state
        self._pool.submit(self._quiet, self.beat)

    def _quiet(self, fn: Callable[[], Any]) -> None:
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - best effort
            self.log(f"  {getattr(fn, '__name__', 'call')}: {describe(exc)}")

    def read_controls(self) -> None:
        """One listing of control/: kill requests and watch flags; refresh the watched live logs."""
        assert self.ud is not None
        self.controls = read_controls(self.clients.s3, self.ud.bucket, self.session_id)
        for n, rj in list(self.running.items()):
            if n in self.controls.watched:
                self.refresh_live(rj)

    def check_spot(self) -> None:
        """Poll the spot interruption notice and the rebalance recommendation (IMDS)."""
        if self.interruption is None:
            notice = self.imds.spot_instance_action()
            if notice:
                when = notice.get("time") or utcnow_iso()
                self.log(
                    f"# spot interruption notice: action {notice.get('action')!r} at {when}; "
                    "starting no new job, the running ones are lost"
                )
                self.interruption = cause_spot_notice(when, self.instance_id)
        if self.draining is None and self.interruption is None:
            rebalance = self.imds.rebalance_recommendation()
            if rebalance:
                self.draining = (
                    f"EC2 recommends a rebalance (notice at {rebalance.get('noticeTime')})"
                )
                self.log(f"# {self.draining}: starting no new job; the running ones go on")
                self.beat_now(HB_DRAINING)

    # ---- step 3: volumes -------------------------------------------------------------------
    def setup_volumes(self) -> None:
        """Static mode: every snapshot this instance's jobs need, before any job runs."""
        snaps: List[str] = []
        for j in self.jobs:
            if j.snapshot and j.snapshot not in snaps:
                snaps.append(j.snapshot)
        if not snaps:
            self.log("# no job of this instance needs a snapshot; no volumes")
            return
        self.log(f"  detected following different snapshots: {snaps}")
        for snap in snaps:
            vol = self._plan_volume(snap)
            try:
                with self.log.step(f"volume from {snap}"):
                    self._bring_up(vol)
            except Exception as exc:  # noqa: BLE001 - this snapshot's jobs fail, others still run
                vol.error = f"volume from snapshot {snap} did not come up: {describe(exc)}"
                self.log(f"  {vol.error}")

    def _plan_volume(self, snap: str) -> Volume:
        i = len(self.volumes)
        vol = Volume(snap, f"/dev/sd{chr(ord('f') + i)}", self.s.volumes_dir / snap)
        self.volumes[snap] = vol
        self.log(f"  planning: {snap} -> {vol.device_name} -> {vol.mountpoint}")
        return vol

    def volume_for(self, snap: str) -> Volume:
        """Queue mode: the volume of ``snap``, brought up once per instance on a thread of its own."""
        vol = self.volumes.get(snap)
        if vol is None:
            vol = self._plan_volume(snap)

            def up() -> None:
                try:
                    with self.log.step(f"volume from {snap}"):
                        self._bring_up(vol)
                except Exception as exc:  # noqa: BLE001 - its jobs fail
                    vol.error = f"volume from snapshot {snap} did not come up: {describe(exc)}"
                    self.log(f"  {vol.error}")

            self._volume_futures[snap] = self._pool.submit(up)
        return vol

    def _waiter(self, name: str, volume_id: str) -> None:
        delay = self.s.waiter_delay_seconds
        waiter = self.clients.ec2.get_waiter(name)
        # EBS usually settles within a second: look a few times at a short interval first
        quick = min(QUICK_WAIT_DELAY_S, delay)
        try:
            waiter.wait(
                VolumeIds=[volume_id],
                WaiterConfig={"Delay": quick, "MaxAttempts": QUICK_WAIT_ATTEMPTS},
            )
            return
        except WaiterError as exc:
            if "Max attempts exceeded" not in str(exc.kwargs.get("reason", "")):
                raise  # a failure state (a volume in `error`) is final
        attempts = max(1, math.ceil(self.s.volume_timeout_seconds / delay))
        waiter.wait(VolumeIds=[volume_id], WaiterConfig={"Delay": delay, "MaxAttempts": attempts})

    def _bring_up(self, vol: Volume) -> None:
        ec2 = self.clients.ec2
        assert self.ud is not None
        tags = [
            {"Key": SESSION_TAG, "Value": self.ud.session_id},
            {"Key": "awsac:launch-index", "Value": str(self.launch_index)},
        ]
        resp = ec2.create_volume(
            SnapshotId=vol.snapshot,
            AvailabilityZone=self.zone,
            TagSpecifications=[{"ResourceType": "volume", "Tags": tags}],
        )
        vol.volume_id = resp["VolumeId"]
        self.log(f"  instructed EC2 to create volume {vol.volume_id} from snapshot {vol.snapshot}")
        self._waiter("volume_available", vol.volume_id)
        self.log(f"  {vol.volume_id} status: available")
        ec2.attach_volume(
            VolumeId=vol.volume_id, InstanceId=self.instance_id, Device=vol.device_name
        )
        vol.attached = True
        self.log(f"  instructed EC2 to attach volume {vol.volume_id} to {vol.device_name}")
        self._waiter("volume_in_use", vol.volume_id)
        self.log(f"  {vol.volume_id} status: attached")
        ec2.modify_instance_attribute(
            InstanceId=self.instance_id,
            BlockDeviceMappings=[
                {
                    "DeviceName": vol.device_name,
                    "Ebs": {"VolumeId": vol.volume_id, "DeleteOnTermination": True},
                }
            ],
        )
        self.log(f"  set DeleteOnTermination on {vol.volume_id}")
        device = self.provider.find_device(
            vol.volume_id, vol.device_name, self.s.volume_timeout_seconds
        )
        self.log(f"  block device of {vol.volume_id}: {device}")
        self.provider.mount(device, vol.mountpoint)
        vol.mounted = True
        vol.ready = True
        self.log(f"  mounted {device} read-only at {vol.mountpoint}")

    # ---- step 4: run -----------------------------------------------------------------------
    def _finish_unrun(self, job: Job, status: str, error: str, attempt: int = 1) -> None:
        self.submit(self.new_record(job, status, attempt, error=error, runendtime=utcnow_iso()))
        self.outcomes[job.jobnr] = Outcome(job.jobnr, status, error=error, attempt=attempt)

    def _job_env(self, job: Job, job_dir: Path, attempt: int) -> Dict[str, str]:
        env = dict(os.environ)
        vol = self.volumes.get(job.snapshot) if job.snapshot else None
        env.update(
            {
                "ATLASDir": str(vol.mountpoint) if vol else "",
                "ATLASworkingDir": str(self.s.jobs_dir),
                "AWSACworkingDir": str(self.s.session_dir),
                "SessionInfoDir": str(self.s.session_info_dir),
                "SessionInfoFile": str(self.s.session_info_file),
                "AWSAC_SESSION_ID": self.session_id,
                "AWSAC_JOB_NUMBER": str(job.jobnr),
                "AWSAC_JOB_ATTEMPT": str(attempt),
                "AWSAC_JOB_DIR": str(job_dir),
            }
        )
        env.pop("AWSAC_FAULTS", None)
        return env

    def start_job(self, job: Job, record: JobRecord, written: bool) -> None:
        """Start ``job`` as the attempt of ``record`` (running; ``written``: already in the store,
        as a claim is; otherwise the writer sends it)."""
        if job.snapshot:
            vol = self.volumes.get(job.snapshot)
            if vol is None or vol.error or not vol.ready:
                error = vol.error if vol and vol.error else f"volume of {job.snapshot} not ready"
                self._finish_unrun(job, FAILED, error, record.attempt)
                return
        script = self.s.session_dir / job.script
        if not script.is_file():
            self._finish_unrun(
                job, FAILED, f"script {job.script} is not in the session archive", record.attempt
            )
            return
        job_dir = self.s.jobs_dir / str(job.jobnr)
        job_dir.mkdir(parents=True, exist_ok=True)
        log_path = job_dir / s3layout.stdouterr_log_name(job.jobnr)
        fh = open(log_path, "wb")
        self.log(f"# preparing job {job.jobnr} (attempt {record.attempt})...")
        self.log(f"  cwd for job: {job_dir}; running /bin/sh {script}")
        command = ["/bin/sh", str(script)]
        if faults.plan().hangs(job.jobnr):
            self.log(f"  injected fault: job {job.jobnr} hangs")
            command = [
                "/bin/sh",
                "-c",
                'echo "job $AWSAC_JOB_NUMBER hangs (injected)"; sleep 86400',
            ]
        scope = unit_name(self.session_id, job.jobnr, record.attempt)
        proc = subprocess.Popen(
            self.scopes.command(scope, command),
            cwd=str(job_dir),
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=self._job_env(job, job_dir, record.attempt),
            start_new_session=True,
        )
        self.running[job.jobnr] = RunningJob(
            job, record, proc, job_dir, log_path, fh, time.monotonic(), scope=scope
        )
        self.log(f"  job {job.jobnr} started: {len(self.running)} of {self.cores} core(s) busy")
        if not written:
            self.submit(record)

    def _signal(self, rj: RunningJob, sig: int) -> None:
        """``sig`` to the job's process group and, where jobs have scopes, to its whole scope
        (which also holds the processes that left the group with ``setsid``)."""
        self._signal_group(rj, sig)
        self.scopes.signal(rj.scope, sig)

    @staticmethod
    def _signal_group(rj: RunningJob, sig: int) -> None:
        try:
            os.killpg(rj.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def request_end(self, rj: RunningJob, reason: str, why: str) -> None:
        if rj.end_reason is None:
            rj.end_reason = reason
            if reason == "timeout":
                rj.timeout_reason = why
            rj.term_sent = time.monotonic()
            self.log(f"  job {rj.job.jobnr}: {why}; sending SIGTERM to its process group")
            self._signal(rj, signal.SIGTERM)

    def check_controls(self, static_queue: List[Job]) -> None:
        """Kill requests (as last read by the control ticker), the per-job time limit and the
        SIGKILL after the grace period. No cloud call here."""
        assert self.ud is not None
        kills = self.controls.kills
        for n in sorted(kills):
            if n in self.running:
                self.request_end(self.running[n], "killed", "kill requested")
            elif n in self.waiting:
                rec = self.waiting.pop(n)
                self.log(f"  job {n}: kill requested before it started")
                self._finish_unrun(
                    self.all_jobs[n], KILLED, "killed on request before it started", rec.attempt
                )
            else:
                for j in list(static_queue):
                    if j.jobnr == n:
                        static_queue.remove(j)
                        self.log(f"  job {n}: kill requested before it started")
                        self._finish_unrun(j, KILLED, "killed on request before it started")
        max_min = _float_or_none(self.ud.get("max_job_min"))
        now = time.monotonic()
        for rj in self.running.values():
            if max_min and now - rj.started > max_min * 60:
                self.request_end(rj, "timeout", f"ran longer than max_job_min={max_min:g} min")
            if rj.term_sent is not None and not rj.kill_sent:
                if now - rj.term_sent >= self.s.kill_grace_seconds:
                    self.log(f"  job {rj.job.jobnr}: still running after SIGTERM; sending SIGKILL")
                    self._signal(rj, signal.SIGKILL)
                    rj.kill_sent = True

    def _tail(self, rj: RunningJob) -> Tuple[int, bytes]:
        size = rj.log_path.stat().st_size
        with open(rj.log_path, "rb") as f:
            if size > self.s.live_tail_bytes:
                f.seek(size - self.s.live_tail_bytes)
                data = f.read()
                data = data[data.find(b"\n") + 1 :]
            else:
                data = f.read()
        return size, redact(data.decode("utf-8", errors="replace")).encode("utf-8")

    def refresh_live(self, rj: RunningJob, force: bool = False) -> None:
        """Upload the redacted tail of a job's output to ``live/job_N.log`` if it changed (only
        while someone watches it, or ``force``)."""
        assert self.ud is not None
        try:
            size = rj.log_path.stat().st_size
            if size == rj.live_size and not force:
                return
            size, body = self._tail(rj)
            key = s3layout.live_log_key(self.session_id, rj.job.jobnr)
            self.clients.s3.put_object(
                Bucket=self.ud.bucket, Key=key, Body=body, ContentType="text/plain; charset=utf-8"
            )
            rj.live_size = size
        except Exception as exc:  # noqa: BLE001 - a live log is best effort
            self.log(f"  live log of job {rj.job.jobnr} not refreshed: {describe(exc)}")

    # ---- claims (queue mode, and a retry reservation's list) ----------------------------------
    def claim_round(self, wanted: int) -> ClaimResult:
        """On the claim thread: claim up to ``wanted`` jobs with conditional writes."""
        assert self.store is not None and self.ud is not None
        claimed: List[JobRecord] = []
        try:
            if self.claims_needed:
                return self._claim_listed(wanted)
            max_attempts = self.ud.max_attempts or DEFAULT_MAX_ATTEMPTS
            # a fresh list each time (an old one is full of jobs others took), a few refills
            # when others win every race on it
            for _ in range(4):
                found = [
                    (n, a)
                    for n, a in self.store.claimable(
                        len(self.all_jobs), limit=max(20, 4 * self.cores)
                    )
                    if n in self.all_jobs and a <= max_attempts
                ]
                if not found:
                    return ClaimResult(claimed, not claimed)
                self._rng.shuffle(found)
                for n, attempt in found:
                    if len(claimed) >= wanted:
                        return ClaimResult(claimed, False)
                    rec = self._claim_one(n, attempt, max_attempts)
                    if rec is not None:
                        claimed.append(rec)
                if claimed:
                    break
        except Exception as exc:  # noqa: BLE001 - the loop tries again later
            return ClaimResult(claimed, False, describe(exc))
        return ClaimResult(claimed, False)

    def _claim_one(self, n: int, attempt: int, max_attempts: int) -> Optional[JobRecord]:
        """Claim attempt ``attempt`` of job ``n``: its running record if this instance got it."""
        assert self.store is not None
        if n not in self.all_jobs or attempt > max_attempts:
            return None
        job = self.all_jobs[n]
        if attempt > 1 and self.store.kind == "s3":
            known = self.store.get(n)  # its history, which a whole-object write must carry
            if known is not None:
                self.known[n] = known
        if n in self.controls.kills:
            rec = self.new_record(
                job,
                KILLED,
                attempt,
                error="killed on request before it started",
                runendtime=utcnow_iso(),
            )
            if self.store.claim(rec):
                self.log(f"  job {n}: kill requested before it started (claimed as killed)")
                self.outcomes[n] = Outcome(n, KILLED, error=rec.error, attempt=attempt)
            return None
        rec = self.new_record(job, RUNNING, attempt, runstarttime=utcnow_iso())
        if self.store.claim(rec):
            self.log(f"  claimed job {n} (attempt {attempt})")
            return rec
        return None

    def _claim_listed(self, wanted: int) -> ClaimResult:
        """A retry reservation: claim this instance's listed jobs as their pending attempt."""
        assert self.store is not None
        claimed: List[JobRecord] = []
        for job in list(self.jobs):
            if len(claimed) >= wanted:
                break
            n = job.jobnr
            known = self.known.get(n) or self.store.get(n)
            if known is not None:
                self.known[n] = known
            if known is not None and known.status != PENDING:
                self.log(
                    f"  job {n} is {known.status} (attempt {known.attempt}), not pending: "
                    "not run by this reservation"
                )
                self.jobs.remove(job)
                continue
            attempt = known.attempt if known is not None else 1
            rec = self.new_record(job, RUNNING, attempt, runstarttime=utcnow_iso())
            self.jobs.remove(job)
            if self.store.claim(rec):
                self.log(f"  claimed job {n} (attempt {attempt})")
                claimed.append(rec)
            else:
                self.log(f"  job {n} attempt {attempt} was claimed elsewhere")
        return ClaimResult(claimed, not self.jobs and not claimed)

    def _claims(self, now: float) -> None:
        """Start, collect and act on claim rounds (main thread; the round runs on a thread)."""
        if self._claim is not None and self._claim.done():
            result = self._claim.result()
            self._claim = None
            if result.error:
                self._claim_failures += 1
                wait = min(30.0, self.s.writer_retry_seconds * 2**self._claim_failures)
                self._claim_after = now + wait
                self.log(f"  claiming failed ({result.error}); trying again in {wait:.1f} s")
            else:
                self._claim_failures = 0
                self._claim_empty = result.empty
            for rec in result.claimed:
                self.begin_claimed(rec)
        free = self.cores - len(self.running) - len(self.waiting)  # after the jobs just begun
        if (
            self._claim is None
            and free > 0
            and not self._claim_empty
            and now >= self._claim_after
            and self.draining is None
            and self.interruption is None
        ):
            self._claim = self._pool.submit(self.claim_round, free)

    def begin_claimed(self, rec: JobRecord) -> None:
        job = self.all_jobs[rec.jobnr]
        if job.snapshot:
            vol = self.volume_for(job.snapshot)
            if not vol.ready and vol.error is None:
                self.waiting[job.jobnr] = rec
                return
        self.start_job(job, rec, written=True)

    def _start_waiting(self) -> None:
        for n, rec in list(self.waiting.items()):
            job = self.all_jobs[n]
            vol = self.volumes.get(job.snapshot or "")
            if vol is not None and (vol.ready or vol.error):
                del self.waiting[n]
                self.start_job(job, rec, written=True)

    def run_jobs(self) -> None:
        static_queue = [j for j in self.jobs if j.jobnr not in self.outcomes]
        if self.claims_needed:
            static_queue = []
        cpi = self.cores
        lease_h = _float_or_none(self.ud.get("lease_h")) if self.ud else None
        claiming = self.queue_mode or self.claims_needed
        what = "claimed as cores free" if self.queue_mode else f"{len(self.jobs)} to run"
        self.log(f"# initialize running jobs ({what}, at most {cpi} at once)...")
        self.hb_state = HB_RUNNING
        run_started = time.monotonic()
        lease_over = False
        while True:
            now = time.monotonic()
            # ended jobs first: a core freed now is claimed in this round, not a tick later
            self._reap_ended()
            busy = len(self.running) + len(self.waiting)
            if not claiming:
                while static_queue and busy < cpi and self.draining is None:
                    self.start_job(
                        static_queue[0],
                        self.new_record(static_queue[0], RUNNING, 1, runstarttime=utcnow_iso()),
                        written=False,
                    )
                    static_queue.pop(0)
                    busy = len(self.running) + len(self.waiting)
            else:
                self._claims(now)
                self._start_waiting()
            self.fault_step("run", now - run_started)
            for n, fut in list(self.saving.items()):
                if fut.done():
                    del self.saving[n]
            self.check_controls(static_queue)
            if lease_h and not lease_over and now - self.started > lease_h * 3600:
                lease_over = True
                self.draining = f"the session lease of {lease_h:g} h is over"
                for rj in self.running.values():
                    self.request_end(rj, "timeout", f"session lease of {lease_h:g} h is over")
                for j in static_queue:
                    self._finish_unrun(j, FAILED, f"session lease of {lease_h:g} h was over")
                static_queue.clear()
            if self.interruption is not None:
                self.interrupt(self.interruption, static_queue)
                return
            idle = not self.running and not self.waiting and not self.saving
            if idle and (not static_queue or self.draining is not None):
                if not claiming or self.draining is not None:
                    break
                if self._claim is None and self._claim_empty:
                    break
            self._pause()
        self.log("# all subprocesses ended")

    def _reap_ended(self) -> None:
        """Record the jobs whose process has ended (each frees a core)."""
        for n, rj in list(self.running.items()):
            if rj.proc.poll() is not None:
                del self.running[n]
                self.job_ended(rj)
                self._claim_empty = False  # a core is free: look again

    def _pause(self) -> None:
        """One tick of the loop, cut short when a claim round in flight comes back: its jobs
        start at once instead of waiting out the tick (issue 14's benchmark: a tick per job)."""
        if self._claim is not None and not self._claim.done():
            wait_futures([self._claim], timeout=self.s.tick_seconds)
        else:
            time.sleep(self.s.tick_seconds)

    # ---- step 5: save ----------------------------------------------------------------------
    def job_ended(self, rj: RunningJob) -> None:
        """The process ended: record it (coalesced ``saving``) and save on the save pool."""
        n = rj.job.jobnr
        rc = rj.proc.returncode
        seconds = time.monotonic() - rj.started
        self.log(f"# subprocess for job {n} ended after {seconds:.1f} s. returncode: {rc}")
        # Whatever the script left behind in its process group goes too (and in its scope, on
        # the save pool: systemctl is quick, but the loop does not wait for it).
        self._signal_group(rj, signal.SIGKILL)
        rj.log_handle.close()
        now = utcnow_iso()
        saving = rj.record.with_(status=SAVING, runendtime=now, returncode=rc, savestarttime=now)
        self.submit(saving)  # replaced by the end record if the save is quick
        assert self._saver is not None
        self.saving[n] = self._saver.submit(self._save, rj, saving, seconds)

    def _save(self, rj: RunningJob, saving: JobRecord, seconds: float) -> None:
        n = rj.job.jobnr
        error = None
        results = None
        self.scopes.stop(rj.scope)  # nothing of the job writes while its output is saved
        t0 = time.monotonic()
        try:
            results = self.save_outputs(rj)
        except Exception as exc:  # noqa: BLE001 - the job ends failed, the others go on
            error = f"saving the output failed: {describe(exc)}"
            self.log(f"  job {n}: {error}")
        if error is not None:
            # The saved log is not there: the live tail is the only copy of the output's end.
            self.refresh_live(rj, force=True)
        self.log(f"  saving job {n} took {time.monotonic() - t0:.1f} s")
        if rj.end_reason == "killed":
            status, error = KILLED, error or "killed on request"
        elif rj.end_reason == "timeout":
            status = KILLED
            limit = rj.timeout_reason or (
                f"ran longer than max_job_min={self.ud.get('max_job_min') if self.ud else None} min"
            )
            error = f"timeout: {limit}" + (f"; {error}" if error else "")
        else:
            status = FAILED if error else FINISHED
        self.submit(
            saving.with_(status=status, saveendtime=utcnow_iso(), results=results, error=error)
        )
        self.outcomes[n] = Outcome(n, status, saving.returncode, seconds, error, saving.attempt)

    def save_outputs(self, rj: RunningJob) -> str:
        """Upload results (if any) and the redacted, bundled log under the attempt's keys, with
        copies at the paper's names; returns the ``results`` value."""
        n, attempt = rj.job.jobnr, rj.record.attempt
        results = rj.job_dir / RESULTS_FILE
        if results.is_file():
            self.log(f"  found {results} ({results.stat().st_size} bytes)")
            self.upload(
                results,
                s3layout.attempt_results_key(self.session_id, n, attempt),
                also=s3layout.results_key(self.session_id, n),
            )
            outcome = RESULTS_SAVED
        else:
            self.log(f"  job {n} made no {RESULTS_FILE}; noted in its status (results=none)")
            outcome = RESULTS_NONE
        self.upload_log(rj)
        return outcome

    def upload_log(self, rj: RunningJob) -> None:
        n, attempt = rj.job.jobnr, rj.record.attempt
        bundle = rj.job_dir / s3layout.stdouterr_name(n)
        changed = bundle_redacted(rj.log_path, bundle, rj.log_path.name, say=self.log)
        if changed:
            self.log(f"  redacted {changed} credential(s) in the output of job {n}")
        self.log(f"  bundled {rj.log_path.name} to {bundle.name}")
        self.upload(
            bundle,
            s3layout.attempt_stdouterr_key(self.session_id, n, attempt),
            also=s3layout.stdouterr_key(self.session_id, n),
        )

    # ---- the instance goes away under its jobs -----------------------------------------------
    def interrupt(self, cause: str, static_queue: Optional[List[Job]] = None) -> None:
        """EC2 takes the instance (spot notice, SIGTERM at shutdown): start nothing more, record
        the running jobs ``lost`` with ``cause``, upload their partial logs, within the deadline."""
        deadline = time.monotonic() + self.s.shutdown_seconds
        self.interruption = cause
        self.log(f"# {cause}: the running jobs are lost; saving what they wrote")
        self.hb_state = HB_INTERRUPTED
        ended = utcnow_iso()
        lost = list(self.running.values())
        for rj in lost:
            self._signal(rj, signal.SIGTERM)
            self.submit(rj.record.with_(status=LOST, runendtime=ended, error=cause), urgent=True)
            self.outcomes[rj.job.jobnr] = Outcome(
                rj.job.jobnr, LOST, None, time.monotonic() - rj.started, cause, rj.record.attempt
            )
        for n, rec in list(self.waiting.items()):
            self.submit(rec.with_(status=LOST, runendtime=ended, error=cause), urgent=True)
            self.outcomes[n] = Outcome(n, LOST, error=cause, attempt=rec.attempt)
        self.waiting.clear()
        for j in static_queue or []:
            why = f"{cause}, before the job started"
            self._finish_unrun(j, LOST, why)
        if static_queue:
            static_queue.clear()
        uploads = [self._pool.submit(self._quiet, self.beat)]
        for rj in lost:
            try:
                rj.proc.wait(timeout=max(0.0, min(1.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                self._signal(rj, signal.SIGKILL)
            rj.log_handle.close()
            uploads.append(self._pool.submit(self._quiet, lambda rj=rj: self.upload_log(rj)))
        self.running.clear()
        for fut in uploads + list(self.saving.values()):
            try:
                fut.result(timeout=max(0.0, deadline - time.monotonic()))
            except Exception:  # noqa: BLE001 - out of time: the rest is the client's
                pass
        if self.writer is not None:
            self.writer.flush(max(0.5, deadline - time.monotonic()))

    # ---- summary and step 6: tear down -------------------------------------------------------
    def summary(self) -> None:
        self.log("# summary:")
        for n in sorted(self.outcomes):
            o = self.outcomes[n]
            extra = f" error: {o.error}" if o.error else ""
            self.log(
                f"  job {n} (attempt {o.attempt}): {o.status} returncode {o.returncode} "
                f"after {o.seconds:.1f} s{extra}"
            )

    def stop_running(self, reason: str) -> None:
        for rj in list(self.running.values()):
            self.log(f"  job {rj.job.jobnr}: stopping, {reason}")
            self._signal(rj, signal.SIGKILL)
            try:
                rj.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            rj.log_handle.close()
            self.submit(
                rj.record.with_(status=FAILED, runendtime=utcnow_iso(), error=reason), urgent=True
            )
            self.outcomes[rj.job.jobnr] = Outcome(
                rj.job.jobnr, FAILED, error=reason, attempt=rj.record.attempt
            )
        self.running.clear()
        for n, rec in list(self.waiting.items()):
            self.submit(rec.with_(status=FAILED, error=reason), urgent=True)
            self.outcomes[n] = Outcome(n, FAILED, error=reason, attempt=rec.attempt)
        self.waiting.clear()

    def fail_unfinished(self, reason: str) -> None:
        if self.writer is None:
            return
        for j in self.jobs:
            if j.jobnr not in self.outcomes and not self.claims_needed:
                self._finish_unrun(j, FAILED, reason)

    def flush_statuses(self, seconds: Optional[float] = None) -> None:
        """Wait until the writer has sent every record (up to ``status_flush_seconds``)."""
        if self.writer is None:
            return
        for fut in list(self.saving.values()):
            try:
                fut.result(timeout=self.s.status_flush_seconds)
            except Exception:  # noqa: BLE001 - logged by the save itself
                pass
        if not self.writer.flush(self.s.status_flush_seconds if seconds is None else seconds):
            self.log(f"  status records not written in time: jobs {self.writer.unsynced}")
        self.log(f"# {self.writer.summary()}")
        calls = ", ".join(f"{k} {v}" for k, v in sorted(self.clients.requests.items()))
        self.log(f"# cloud requests: {calls}")

    def teardown_volumes(self) -> None:
        for fut in self._volume_futures.values():
            try:
                fut.result(timeout=self.s.volume_timeout_seconds)
            except Exception:  # noqa: BLE001 - logged where it failed
                pass
        for vol in self.volumes.values():
            if vol.volume_id is None:
                continue
            with_step = f"tear down volume {vol.volume_id} ({vol.snapshot})"
            try:
                with self.log.step(with_step):
                    if vol.mounted:
                        self.provider.unmount(vol.mountpoint)
                        vol.mounted = False
                        self.log(f"  unmounted {vol.mountpoint}")
                    ec2 = self.clients.ec2
                    if vol.attached:
                        ec2.detach_volume(VolumeId=vol.volume_id, InstanceId=self.instance_id)
                        self.log(f"  instructed EC2 to detach volume {vol.volume_id}")
                        self._waiter("volume_available", vol.volume_id)
                        vol.attached = False
                        self.log(f"  {vol.volume_id} status: available")
                    ec2.delete_volume(VolumeId=vol.volume_id)
                    self.log(f"  instructed EC2 to delete volume {vol.volume_id}")
            except Exception as exc:  # noqa: BLE001 - go on with the next volume
                self.log(
                    f"  could not tear down {vol.volume_id}: {describe(exc)} (DeleteOnTermination is set)"
                )

    def upload_own_log(self) -> None:
        if self.ud is None or self.launch_index is None or self.log.path is None:
            return
        try:
            with self.log.step("bundle and upload the processjobs log"):
                bundle = self.s.work_dir / s3layout.processjobslog_name(self.launch_index)
                self.log(
                    f"  bundled processjobs.log to {bundle.name}; no lines after this are in it"
                )
                bundle_redacted(self.log.path, bundle, "processjobs.log")
                self.upload(
                    bundle,
                    s3layout.processjobslog_key(
                        self.session_id, self.launch_index, self.ud.reservation
                    ),
                )
        except Exception as exc:  # noqa: BLE001 - termination must still happen
            self.log(f"  could not upload the processjobs log: {describe(exc)}")

    def terminate(self) -> None:
        iid = self.instance_id
        if iid is None:
            try:
                iid = self.imds.instance_id()
            except AwsacError as exc:
                self.log(f"  cannot terminate: instance id unknown ({exc})")
                return
        if self.s.keep_instance:
            self.log(f"# --keep-instance: not terminating {iid}")
            return
        failed = self.failure or any(o.status != FINISHED for o in self.outcomes.values())
        if failed and self.s.keep_instance_on_failure_min > 0 and self.interruption is None:
            self.log(
                f"# something failed: keeping {iid} for {self.s.keep_instance_on_failure_min:g} min "
                "for debugging, then terminating"
            )
            time.sleep(self.s.keep_instance_on_failure_min * 60)
        self.log(f"# instructing EC2 to terminate my instance {iid}..")
        self.ending = True
        try:
            self.clients.client("ec2", total=8).terminate_instances(InstanceIds=[iid])
        except Exception as exc:  # noqa: BLE001 - nothing left to do but say so
            self.log(f"  TerminateInstances failed: {describe(exc)}")

    def _sigterm(self, signum: int, frame: Any) -> None:
        if self.ending:
            raise SystemExit(0)  # our own TerminateInstances: the end we asked for
        raise Terminated(f"signal {signum} (SIGTERM)")

    def _outside_cause(self) -> str:
        """Why SIGTERM came: a spot notice if EC2 gave one, else a termination from outside."""
        if self.interruption:
            return self.interruption
        if self.spot:
            try:
                notice = self.imds.spot_instance_action()
            except Exception:  # noqa: BLE001 - no time to ask twice
                notice = None
            if notice:
                return cause_spot_notice(notice.get("time") or utcnow_iso(), self.instance_id)
        return cause_terminated(self.instance_id or "(unknown)")

    def run(self) -> int:
        step = "plan"
        previous = signal.signal(signal.SIGTERM, self._sigterm)
        shutdown = False
        try:
            rules = faults.load_session_file(self.s.session_dir)
            if rules:
                self.log(f"# injected faults from {faults.SESSION_FILE}: {len(rules)} rule(s)")
            self.fault_step("plan")
            self.plan()
            step = "volumes"
            self.fault_step("volumes")
            if not self.queue_mode:
                self.setup_volumes()
            step = "run"
            self.run_jobs()
        except Terminated:
            shutdown = True
            self.log("# SIGTERM: the instance shuts down")
            try:
                started = set(self.running) | set(self.waiting) | set(self.outcomes)
                unstarted = [j for j in self.jobs if j.jobnr not in started]
                self.interrupt(self._outside_cause(), [] if self.claims_needed else unstarted)
            except BaseException as exc:  # noqa: BLE001 - a second SIGTERM: go on ending
                self.log(f"  while recording the lost jobs: {type(exc).__name__}: {exc}")
        except BaseException as exc:  # noqa: BLE001 - logged with its step, then tear down
            self.failure = f"agent failed in step '{step}': {type(exc).__name__}: {exc}"
            self.log.exception(f"# ERROR in step '{step}'", exc)
            if not isinstance(exc, Exception):
                self.log(f"  ({type(exc).__name__}: tearing down)")
        finally:
            try:
                try:
                    if self.failure:
                        self.stop_running(self.failure)
                    self.fail_unfinished(self.failure or "the agent stopped before this job ran")
                except Exception as exc:  # noqa: BLE001
                    self.log(f"  marking unfinished jobs failed: {describe(exc)}")
                self.hb_state = HB_TEARDOWN
                self.flush_statuses(2.0 if shutdown else None)
                self.summary()
                self.stop_tickers()
                if not shutdown:
                    self._quiet(self.beat)
                    self.log(
                        f"# tear down ({time.monotonic() - self.started:.1f} s since start)..."
                    )
                    self.fault_step("teardown")
                    self.teardown_volumes()
                self.upload_own_log()
            except BaseException as exc:  # noqa: BLE001 - the instance must still end
                self.log(f"  tear down: {type(exc).__name__}: {exc}")
            finally:
                # Whatever failed above (or a second SIGTERM), the instance still ends itself.
                try:
                    self.terminate()
                finally:
                    if self.writer is not None:
                        self.writer.stop()
                    self._pool.shutdown(wait=False)
                    signal.signal(signal.SIGTERM, previous)
        return 1 if self.failure else 0


class Terminated(SystemExit):
    """The worker got SIGTERM (e.g. the instance shuts down): record, then exit."""


def _float_or_none(text: Optional[str]) -> Optional[float]:
    try:
        value = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return value if value and value > 0 else None


def bundle_redacted(src: Path, dest: Path, arcname: str, say: Any = None) -> int:
    """A tar.bz2 at ``dest`` holding ``src`` redacted as ``arcname``; returns secrets redacted
    (streaming, with progress lines through ``say``: ``archive.bundle_log``)."""
    return bundle_log(src, dest, arcname, say=say)


def build_parser() -> argparse.ArgumentParser:
    """The worker's own command line (``awsac-processjobs.pyz [options]``)."""
    p = argparse.ArgumentParser(
        prog="awsac-processjobs",
        description="Run this instance's jobs of an awsac session, save their output, clean up.",
    )
    add_worker_arguments(p)
    return p


def run(args: argparse.Namespace) -> int:
    """Run the worker with parsed arguments; returns the exit code."""
    settings = Settings.from_env(args)
    if args.keep_instance_on_failure is None:
        settings = _with_keep_fail_from_userdata(settings)
    log = AgentLog(settings.work_dir / "processjobs.log")
    log(
        f"***** awsac-processjobs start {time.strftime('%a %b %d %H:%M:%S %Y', time.gmtime())} UTC *****"
    )
    try:
        return Worker(settings, log).run()
    finally:
        log.close()


def _with_keep_fail_from_userdata(settings: Settings) -> Settings:
    try:
        text = settings.session_info_file.read_text(encoding="utf-8")
    except OSError:
        return settings
    ud = parse_userdata(text)
    minutes = _float_or_none(ud.get("keep_fail_min")) if ud else None
    if not minutes:
        return settings
    return replace(settings, keep_instance_on_failure_min=minutes)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``awsac-processjobs.pyz``: exits with the worker's exit code.

    zipapp's generated ``__main__`` ignores a return value, so this raises SystemExit itself.
    """
    args = build_parser().parse_args(argv)
    sys.exit(run(args))


if __name__ == "__main__":
    main()
