"""awsac-processjobs: the worker on each instance (plan, volumes, run, save, tear down, terminate).

Shipped in every session archive as ``awsac-processjobs.pyz``; ``main`` is the zipapp entry point.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, Dict, List, Optional, Sequence

from boto3.s3.transfer import TransferConfig

from . import faults, s3layout
from .agentlog import AgentLog
from .archive import JOBS_CFG
from .assignment import jobs_for_instance
from .autorun import DEFAULT_WORK_DIR, JOBS_DIR, SESSION_INFO_DIR, SESSION_INFO_FILE
from .aws import Clients
from .devices import DeviceProvider, provider_from_env
from .errors import AwsacError, FormatError
from .imds import Imds
from .jobscfg import Job, expand_jobs, read_jobs_cfg
from .redact import redact, redact_file
from .retry import describe, retry
from .sessionid import SESSION_TAG
from .status import (
    FAILED,
    FINISHED,
    KILLED,
    PENDING,
    RESULTS_NONE,
    RESULTS_SAVED,
    RUNNING,
    SAVING,
    WAITFORSAVE,
    JobRecord,
    utcnow_iso,
)
from .store import StatusStore, make_store
from .userdata import UserData, parse_userdata
from .workerargs import add_worker_arguments

RESULTS_FILE = "results.tar.bz2"
TRANSFER = TransferConfig(
    multipart_threshold=16 * 1024 * 1024, multipart_chunksize=16 * 1024 * 1024
)


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass(frozen=True)
class Settings:
    """Where the worker works and how often it looks; from the environment and the command line."""

    work_dir: Path
    session_dir: Path
    poll_seconds: float = 5.0
    kill_grace_seconds: float = 10.0
    volume_timeout_seconds: float = 300.0
    waiter_delay_seconds: float = 5.0
    live_tail_bytes: int = 64 * 1024
    keep_instance: bool = False
    keep_instance_on_failure_min: float = 0.0
    status_flush_seconds: float = 300.0

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


@dataclass
class RunningJob:
    """A job's process while it runs."""

    job: Job
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


@dataclass
class Outcome:
    """What happened to a job, for the summary."""

    jobnr: int
    status: str
    returncode: Optional[int] = None
    seconds: float = 0.0
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
        self.jobs: List[Job] = []
        self.volumes: Dict[str, Volume] = {}
        self.running: Dict[int, RunningJob] = {}
        self.outcomes: Dict[int, Outcome] = {}
        self.failure: Optional[str] = None
        self.started = time.monotonic()
        self.unsynced: Dict[int, None] = {}  # jobs whose last status update did not reach the store

    # ---- helpers -------------------------------------------------------------------------
    @property
    def clients(self) -> Clients:
        if self._clients is None:
            self._clients = Clients(os.environ.get("AWS_DEFAULT_REGION") or self.imds.region())
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

    def set_status(self, jobnr: int, **attrs: Any) -> None:
        """Update a job's record; a store that keeps failing is logged, never fatal."""
        assert self.store is not None
        try:
            self.store.update(jobnr, **attrs)
            self.unsynced.pop(jobnr, None)
            shown = ", ".join(f"{k}={v}" for k, v in attrs.items() if v is not None)
            self.log(f"  status job{jobnr}: {shown}")
        except Exception as exc:  # noqa: BLE001 - the job goes on; the next update rewrites the record
            self.unsynced[jobnr] = None
            self.log(
                f"  status job{jobnr}: update failed ({describe(exc)}); will be rewritten next time"
            )

    def flush_statuses(self) -> None:
        """Write the records whose last update failed (e.g. a throttled store) until they stick."""
        if self.store is None or not self.unsynced:
            return
        deadline = time.monotonic() + self.s.status_flush_seconds
        delay = 1.0
        while self.unsynced:
            for jobnr in list(self.unsynced):
                try:
                    self.store.update(jobnr)
                    self.unsynced.pop(jobnr, None)
                    self.log(f"  status job{jobnr}: written after earlier failures")
                except Exception as exc:  # noqa: BLE001 - try again until the deadline
                    if time.monotonic() > deadline:
                        self.log(f"  status job{jobnr}: could not be written: {describe(exc)}")
                        return
            if self.unsynced:
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

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

                boto3.session.Session(region_name=self.clients.region).client(
                    "ec2"
                ).terminate_instances(InstanceIds=[iid])
                time.sleep(3600)  # the hypervisor ends us

    def upload(self, path: Path, key: str) -> None:
        """Upload a file with the transfer manager (multipart when large), retrying with backoff."""
        assert self.ud is not None
        size = path.stat().st_size
        t0 = time.monotonic()
        self.log(f"  start upload {path.name} ({size} bytes) to bucket:{self.ud.bucket} key:{key}")
        retry(
            lambda: self.clients.s3.upload_file(str(path), self.ud.bucket, key, Config=TRANSFER),
            f"upload {key}",
            self.log,
        )
        self.log(f"  finished upload {key} in {time.monotonic() - t0:.1f} s")

    # ---- step 2: plan ----------------------------------------------------------------------
    def plan(self) -> None:
        with self.log.step("parsing the session info"):
            self.ud = read_session_info(self.s, self.imds)
            self.log(
                f"  Session ID: {self.ud.session_id} ; CoresPerInstance: {self.ud.cores_per_instance}"
                f" ; store: {self.ud.get('store', 'simpledb')}"
            )
        with self.log.step("getting information about this instance from the metadata"):
            self.instance_id = self.imds.instance_id()
            self.launch_index = self.imds.launch_index()
            self.zone = self.imds.availability_zone()
            self.log(
                f"  the ami-launch-index of this instance ({self.instance_id}) is {self.launch_index}"
            )
            self.log(f"  the Availability Zone of this instance is {self.zone}")
        with self.log.step(f"parsing the jobs file {self.s.session_dir / JOBS_CFG}"):
            lines = read_jobs_cfg(self.s.session_dir / JOBS_CFG)
            all_jobs = expand_jobs(lines)
            mine = set(
                jobs_for_instance(self.launch_index, self.ud.cores_per_instance, len(all_jobs))
            )
            self.jobs = [j for j in all_jobs if j.jobnr in mine]
            self.log(f"  my job numbers are: {[j.jobnr for j in self.jobs]}")
            for j in self.jobs:
                self.log(f"  job {j.jobnr}: snapshot {j.snapshot or '-'} script {j.script}")
        self.store = make_store(
            self.ud.get("store"), self.clients, self.ud.bucket, self.ud.session_id, self.log
        )
        with self.log.step(f"creating the status items ({self.store.kind} store)"):
            self.store.ensure()
            for j in self.jobs:
                self.store.put(
                    JobRecord(
                        jobnr=j.jobnr,
                        status=PENDING,
                        instance_id=self.instance_id,
                        launchindex=self.launch_index,
                        shellscript=j.script,
                        snapshot=j.snapshot,
                    )
                )
                self.log(f"  status job{j.jobnr}: pending")

    # ---- step 3: volumes -------------------------------------------------------------------
    def setup_volumes(self) -> None:
        snaps: List[str] = []
        for j in self.jobs:
            if j.snapshot and j.snapshot not in snaps:
                snaps.append(j.snapshot)
        if not snaps:
            self.log("# no job of this instance needs a snapshot; no volumes")
            return
        self.log(f"  detected following different snapshots: {snaps}")
        for i, snap in enumerate(snaps):
            vol = Volume(snap, f"/dev/sd{chr(ord('f') + i)}", self.s.volumes_dir / snap)
            self.volumes[snap] = vol
            self.log(f"  planning: {snap} -> {vol.device_name} -> {vol.mountpoint}")
            try:
                with self.log.step(f"volume from {snap}"):
                    self._bring_up(vol)
            except Exception as exc:  # noqa: BLE001 - this snapshot's jobs fail, others still run
                vol.error = f"volume from snapshot {snap} did not come up: {describe(exc)}"
                self.log(f"  {vol.error}")
                for j in self.jobs:
                    if j.snapshot == snap:
                        self._finish_unrun(j, FAILED, vol.error)

    def _waiter(self, name: str, volume_id: str) -> None:
        delay = self.s.waiter_delay_seconds
        attempts = max(1, math.ceil(self.s.volume_timeout_seconds / delay))
        self.clients.ec2.get_waiter(name).wait(
            VolumeIds=[volume_id], WaiterConfig={"Delay": delay, "MaxAttempts": attempts}
        )

    def _bring_up(self, vol: Volume) -> None:
        ec2 = self.clients.ec2
        assert self.ud is not None
        tags = [
            {"Key": SESSION_TAG, "Value": self.ud.session_id},
            {"Key": "awsac:launch-index", "Value": str(self.launch_index)},
        ]
        resp = retry(
            lambda: ec2.create_volume(
                SnapshotId=vol.snapshot,
                AvailabilityZone=self.zone,
                TagSpecifications=[{"ResourceType": "volume", "Tags": tags}],
            ),
            f"CreateVolume from {vol.snapshot}",
            self.log,
        )
        vol.volume_id = resp["VolumeId"]
        self.log(f"  instructed EC2 to create volume {vol.volume_id} from snapshot {vol.snapshot}")
        self._waiter("volume_available", vol.volume_id)
        self.log(f"  {vol.volume_id} status: available")
        retry(
            lambda: ec2.attach_volume(
                VolumeId=vol.volume_id, InstanceId=self.instance_id, Device=vol.device_name
            ),
            f"AttachVolume {vol.volume_id}",
            self.log,
        )
        vol.attached = True
        self.log(f"  instructed EC2 to attach volume {vol.volume_id} to {vol.device_name}")
        self._waiter("volume_in_use", vol.volume_id)
        self.log(f"  {vol.volume_id} status: attached")
        retry(
            lambda: ec2.modify_instance_attribute(
                InstanceId=self.instance_id,
                BlockDeviceMappings=[
                    {
                        "DeviceName": vol.device_name,
                        "Ebs": {"VolumeId": vol.volume_id, "DeleteOnTermination": True},
                    }
                ],
            ),
            f"DeleteOnTermination {vol.volume_id}",
            self.log,
        )
        self.log(f"  set DeleteOnTermination on {vol.volume_id}")
        device = self.provider.find_device(
            vol.volume_id, vol.device_name, self.s.volume_timeout_seconds
        )
        self.log(f"  block device of {vol.volume_id}: {device}")
        self.provider.mount(device, vol.mountpoint)
        vol.mounted = True
        self.log(f"  mounted {device} read-only at {vol.mountpoint}")

    # ---- step 4: run -----------------------------------------------------------------------
    def _finish_unrun(self, job: Job, status: str, error: str) -> None:
        self.set_status(job.jobnr, status=status, error=error)
        self.outcomes[job.jobnr] = Outcome(job.jobnr, status, error=error)

    def _job_env(self, job: Job, job_dir: Path) -> Dict[str, str]:
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
                "AWSAC_JOB_DIR": str(job_dir),
            }
        )
        env.pop("AWSAC_FAULTS", None)
        return env

    def start_job(self, job: Job) -> None:
        script = self.s.session_dir / job.script
        if not script.is_file():
            self._finish_unrun(job, FAILED, f"script {job.script} is not in the session archive")
            return
        job_dir = self.s.jobs_dir / str(job.jobnr)
        job_dir.mkdir(parents=True, exist_ok=True)
        log_path = job_dir / s3layout.stdouterr_log_name(job.jobnr)
        fh = open(log_path, "ab")
        self.log(f"# preparing job {job.jobnr}...")
        self.log(f"  cwd for job: {job_dir}; running /bin/sh {script}")
        command = ["/bin/sh", str(script)]
        if faults.plan().hangs(job.jobnr):
            self.log(f"  injected fault: job {job.jobnr} hangs")
            command = [
                "/bin/sh",
                "-c",
                'echo "job $AWSAC_JOB_NUMBER hangs (injected)"; sleep 86400',
            ]
        proc = subprocess.Popen(
            command,
            cwd=str(job_dir),
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=self._job_env(job, job_dir),
            start_new_session=True,
        )
        self.running[job.jobnr] = RunningJob(job, proc, job_dir, log_path, fh, time.monotonic())
        self.set_status(job.jobnr, status=RUNNING, runstarttime=utcnow_iso())

    def _signal(self, rj: RunningJob, sig: int) -> None:
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

    def check_controls(self, queue: List[Job]) -> None:
        """Kill requests, the per-job time limit and the SIGKILL after the grace period."""
        assert self.store is not None and self.ud is not None
        nrs = list(self.running) + [j.jobnr for j in queue]
        if nrs:
            try:
                kills = self.store.kill_requests(nrs)
            except Exception as exc:  # noqa: BLE001 - look again next time
                self.log(f"  reading kill requests failed: {describe(exc)}")
                kills = set()
            for n in sorted(kills):
                if n in self.running:
                    self.request_end(self.running[n], "killed", "kill requested")
                else:
                    for j in list(queue):
                        if j.jobnr == n:
                            queue.remove(j)
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

    def refresh_live(self, rj: RunningJob, force: bool = False) -> None:
        """Upload the redacted tail of a job's output to ``live/job_N.log`` if it changed."""
        assert self.ud is not None
        try:
            size = rj.log_path.stat().st_size
            if size == rj.live_size and not force:
                return
            with open(rj.log_path, "rb") as f:
                if size > self.s.live_tail_bytes:
                    f.seek(size - self.s.live_tail_bytes)
                    data = f.read()
                    data = data[data.find(b"\n") + 1 :]
                else:
                    data = f.read()
            body = redact(data.decode("utf-8", errors="replace")).encode("utf-8")
            key = s3layout.live_log_key(self.session_id, rj.job.jobnr)
            retry(
                lambda: self.clients.s3.put_object(
                    Bucket=self.ud.bucket,
                    Key=key,
                    Body=body,
                    ContentType="text/plain; charset=utf-8",
                ),
                f"live log {key}",
                self.log,
                attempts=2,
            )
            rj.live_size = size
        except Exception as exc:  # noqa: BLE001 - a live log is best effort
            self.log(f"  live log of job {rj.job.jobnr} not refreshed: {describe(exc)}")

    def run_jobs(self) -> None:
        queue = [j for j in self.jobs if j.jobnr not in self.outcomes]
        cpi = self.ud.cores_per_instance if self.ud else 1
        lease_h = _float_or_none(self.ud.get("lease_h")) if self.ud else None
        self.log(f"# initialize running jobs ({len(queue)} to run, at most {cpi} at once)...")
        next_poll = 0.0
        run_started = time.monotonic()
        while queue or self.running:
            while queue and len(self.running) < cpi:
                self.start_job(queue.pop(0))
            self.fault_step("run", time.monotonic() - run_started)
            for n, rj in list(self.running.items()):
                if rj.proc.poll() is not None:
                    del self.running[n]
                    self.finish_job(rj)
            now = time.monotonic()
            if now >= next_poll:
                next_poll = now + self.s.poll_seconds
                for rj in self.running.values():
                    self.refresh_live(rj)
                self.check_controls(queue)
                if lease_h and now - self.started > lease_h * 3600:
                    for rj in self.running.values():
                        self.request_end(rj, "timeout", f"session lease of {lease_h:g} h is over")
                    for j in queue:
                        self._finish_unrun(j, FAILED, f"session lease of {lease_h:g} h was over")
                    queue.clear()
            if queue or self.running:
                time.sleep(min(0.2, self.s.poll_seconds))
        self.log("# all subprocesses ended")

    # ---- step 5: save ----------------------------------------------------------------------
    def finish_job(self, rj: RunningJob) -> None:
        n = rj.job.jobnr
        rc = rj.proc.returncode
        seconds = time.monotonic() - rj.started
        self.log(f"# subprocess for job {n} ended after {seconds:.1f} s. returncode: {rc}")
        # Whatever the script left behind in its process group goes too.
        self._signal(rj, signal.SIGKILL)
        rj.log_handle.close()
        self.set_status(n, status=WAITFORSAVE, runendtime=utcnow_iso(), returncode=rc)
        self.set_status(n, status=SAVING, savestarttime=utcnow_iso())
        error = None
        results = None
        t0 = time.monotonic()
        try:
            results = self.save_outputs(rj)
        except Exception as exc:  # noqa: BLE001 - the job ends failed, the others go on
            error = f"saving the output failed: {describe(exc)}"
            self.log(f"  job {n}: {error}")
        if error is not None:
            # The saved log is not there: the live tail is the only copy of the output's end.
            # Once the saved log is uploaded the client reads that instead (one PUT per job less).
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
        self.set_status(n, status=status, saveendtime=utcnow_iso(), results=results, error=error)
        self.outcomes[n] = Outcome(n, status, rc, seconds, error)

    def save_outputs(self, rj: RunningJob) -> str:
        """Upload results (if any) and the redacted, bundled log; returns the ``results`` value."""
        n = rj.job.jobnr
        results = rj.job_dir / RESULTS_FILE
        if results.is_file():
            self.log(f"  found {results} ({results.stat().st_size} bytes)")
            self.upload(results, s3layout.results_key(self.session_id, n))
            outcome = RESULTS_SAVED
        else:
            self.log(f"  job {n} made no {RESULTS_FILE}; noted in its status (results=none)")
            outcome = RESULTS_NONE
        bundle = rj.job_dir / s3layout.stdouterr_name(n)
        changed = bundle_redacted(rj.log_path, bundle, rj.log_path.name)
        if changed:
            self.log(f"  redacted {changed} line(s) with credentials in the output of job {n}")
        self.log(f"  bundled {rj.log_path.name} to {bundle.name}")
        self.upload(bundle, s3layout.stdouterr_key(self.session_id, n))
        return outcome

    # ---- summary and step 6: tear down -------------------------------------------------------
    def summary(self) -> None:
        self.log("# summary:")
        for n in sorted(self.outcomes):
            o = self.outcomes[n]
            extra = f" error: {o.error}" if o.error else ""
            self.log(
                f"  job {n}: {o.status} returncode {o.returncode} after {o.seconds:.1f} s{extra}"
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
        self.running.clear()

    def fail_unfinished(self, reason: str) -> None:
        if self.store is None:
            return
        for j in self.jobs:
            if j.jobnr not in self.outcomes:
                self._finish_unrun(j, FAILED, reason)

    def teardown_volumes(self) -> None:
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
                        retry(
                            lambda ec2=ec2, vid=vol.volume_id: ec2.detach_volume(
                                VolumeId=vid, InstanceId=self.instance_id
                            ),
                            f"DetachVolume {vol.volume_id}",
                            self.log,
                        )
                        self.log(f"  instructed EC2 to detach volume {vol.volume_id}")
                        self._waiter("volume_available", vol.volume_id)
                        vol.attached = False
                        self.log(f"  {vol.volume_id} status: available")
                    retry(
                        lambda ec2=ec2, vid=vol.volume_id: ec2.delete_volume(VolumeId=vid),
                        f"DeleteVolume {vol.volume_id}",
                        self.log,
                    )
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
                self.upload(bundle, s3layout.processjobslog_key(self.session_id, self.launch_index))
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
        if failed and self.s.keep_instance_on_failure_min > 0:
            self.log(
                f"# something failed: keeping {iid} for {self.s.keep_instance_on_failure_min:g} min "
                "for debugging, then terminating"
            )
            time.sleep(self.s.keep_instance_on_failure_min * 60)
        self.log(f"# instructing EC2 to terminate my instance {iid}..")
        try:
            retry(
                lambda: self.clients.ec2.terminate_instances(InstanceIds=[iid]),
                f"TerminateInstances {iid}",
                self.log,
                attempts=8,
            )
        except Exception as exc:  # noqa: BLE001 - nothing left to do but say so
            self.log(f"  TerminateInstances failed: {describe(exc)}")

    def run(self) -> int:
        step = "plan"
        previous = signal.signal(signal.SIGTERM, _sigterm)
        try:
            rules = faults.load_session_file(self.s.session_dir)
            if rules:
                self.log(f"# injected faults from {faults.SESSION_FILE}: {len(rules)} rule(s)")
            self.fault_step("plan")
            self.plan()
            step = "volumes"
            self.fault_step("volumes")
            self.setup_volumes()
            step = "run"
            self.run_jobs()
            self.summary()
        except BaseException as exc:  # noqa: BLE001 - logged with its step, then tear down
            self.failure = f"agent failed in step '{step}': {type(exc).__name__}: {exc}"
            self.log.exception(f"# ERROR in step '{step}'", exc)
            if not isinstance(exc, Exception):
                self.log(f"  ({type(exc).__name__}: tearing down)")
        finally:
            try:
                try:
                    self.stop_running(self.failure or "tear down")
                    self.fail_unfinished(self.failure or "the agent stopped before this job ran")
                except Exception as exc:  # noqa: BLE001
                    self.log(f"  marking unfinished jobs failed: {describe(exc)}")
                self.flush_statuses()
                self.log(f"# tear down ({time.monotonic() - self.started:.1f} s since start)...")
                self.fault_step("teardown")
                self.teardown_volumes()
                self.upload_own_log()
            finally:
                # Whatever failed above (or a second SIGTERM), the instance still ends itself.
                try:
                    self.terminate()
                finally:
                    signal.signal(signal.SIGTERM, previous)
        return 1 if self.failure else 0


class Terminated(SystemExit):
    """The worker got SIGTERM (e.g. the instance shuts down): tear down, then exit."""


def _sigterm(signum: int, frame: Any) -> None:
    raise Terminated(f"signal {signum} (SIGTERM)")


def _float_or_none(text: Optional[str]) -> Optional[float]:
    try:
        value = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return value if value and value > 0 else None


def bundle_redacted(src: Path, dest: Path, arcname: str) -> int:
    """A tar.bz2 at ``dest`` holding ``src`` redacted as ``arcname``; returns lines redacted."""
    tmp = dest.with_name(dest.name + ".redacted")
    changed = redact_file(src, tmp) if src.exists() else 0
    if not tmp.exists():
        tmp.write_text("", encoding="utf-8")
    with tarfile.open(dest, "w:bz2") as tar:
        tar.add(str(tmp), arcname=arcname)
    tmp.unlink()
    return changed


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
