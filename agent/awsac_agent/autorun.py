"""awsac-autorun, the boot step on the image: user-data -> session archive -> the session's autorun.

Prints to the console (EC2 console output), and on any failure still terminates the instance.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Dict, Optional

from . import __version__, s3layout
from .agentlog import AgentLog
from .archive import AUTORUN_SH, safe_extract
from .aws import Clients
from .errors import ArchiveError
from .imds import Imds, ImdsError
from .retry import describe
from .userdata import MARKER, lease_grace, parse_userdata

# The instance's work directory, shared with the worker (processjobs imports these names).
DEFAULT_WORK_DIR = "/mnt/awsac"
SESSION_INFO_DIR = "sessioninfo"
SESSION_INFO_FILE = "awsac.sessinfo"
JOBS_DIR = "jobs"


def session_string(text: str) -> str:
    """The legacy user-data string in ``text`` (itself, or the cloud-init wrapper's marker line)."""
    text = text.strip()
    if text.startswith("#"):
        for line in text.splitlines():
            if line.startswith(MARKER):
                return line[len(MARKER) :].strip()
    return text


def session_env(work: Path, session_id: str, region: Optional[str]) -> Dict[str, str]:
    """The paper's environment for the session's autorun script (and, through it, the worker)."""
    info_dir = work / SESSION_INFO_DIR
    env = {
        "AWSAC_WORK_DIR": str(work),
        "AWSACworkingDir": str(work / "session"),
        "ATLASworkingDir": str(work / JOBS_DIR),
        "SessionInfoDir": str(info_dir),
        "SessionInfoFile": str(info_dir / SESSION_INFO_FILE),
        "AWSACAutostartFile": str(work / "session" / AUTORUN_SH),
        "AWSAC_SESSION_ID": session_id,
        "PYTHONUNBUFFERED": "1",
    }
    if region:
        env["AWS_DEFAULT_REGION"] = region
    return env


class Autorun:
    """One boot of an instance."""

    def __init__(self, keep_instance: bool = False, imds: Optional[Imds] = None) -> None:
        self.keep_instance = keep_instance
        self.work = Path(os.environ.get("AWSAC_WORK_DIR") or DEFAULT_WORK_DIR).resolve()
        self.imds = imds or Imds()
        self.log = AgentLog()
        self.region: Optional[str] = None
        self._clients: Optional[Clients] = None

    @property
    def clients(self) -> Clients:
        if self._clients is None:
            self._clients = Clients(self.region, log=self.log)
        return self._clients

    def run(self) -> int:
        log = self.log
        log("*****")
        log(f"AWSACtools: autorun (individual instance startup), awsac-agent {__version__}")
        log("*****")
        try:
            log("# getting user-data (should contain the session info string)...")
            text = self.imds.user_data()
        except ImdsError as exc:
            log(f"no instance metadata service: {exc}")
            log("this does not look like a cloud instance; nothing to do")
            return 1
        if text is None or not text.strip():
            log("this instance has no user-data: it is not part of an awsac session; nothing to do")
            return 0
        ud = parse_userdata(text)
        if ud is None:
            if text.lstrip().startswith("#!"):
                log(
                    "the user-data is a script with no awsac session line: awsac's boot step runs "
                    "awsac sessions only, not user-data scripts (cloud-init does, on an image that "
                    "has it; the process runner's image has none); nothing to do"
                )
            else:
                log(
                    "the user-data is not an awsac session string: this instance is not ours; "
                    "nothing to do"
                )
            return 0
        log(
            f"  session {ud.session_id}, bucket {ud.bucket}, archive {ud.archive_name}, "
            f"cores per instance {ud.cores_per_instance}"
        )
        self.start_lease_watchdog(ud.get("lease_h"))
        step = "setting up"
        try:
            self.region = os.environ.get("AWS_DEFAULT_REGION") or self.imds.region()
            env = session_env(self.work, ud.session_id, self.region)
            with log.step("setting up environment variables and directories"):
                for k in (
                    "AWSACworkingDir",
                    "ATLASworkingDir",
                    "SessionInfoDir",
                    "SessionInfoFile",
                ):
                    log(f"  {k}: {env[k]}")
                for d in ("SessionInfoDir", "ATLASworkingDir"):
                    Path(env[d]).mkdir(parents=True, exist_ok=True)
                Path(env["SessionInfoFile"]).write_text(
                    session_string(text) + "\n", encoding="utf-8"
                )
                log(f"  wrote the session info file {env['SessionInfoFile']}")
            step = "download"
            archive = self.work / ud.archive_name
            key = s3layout.archive_key(ud.session_id, ud.archive_name)
            with log.step(f"getting the session archive s3://{ud.bucket}/{key}"):
                # botocore retries each request; nothing retries on top of it
                self.clients.s3.download_file(ud.bucket, key, str(archive))
                log(
                    f"  downloaded {key} from bucket {ud.bucket} to {archive} "
                    f"({archive.stat().st_size} bytes)"
                )
            step = "extract"
            session_dir = Path(env["AWSACworkingDir"])
            with log.step(f"extracting the session archive into {session_dir}"):
                if session_dir.exists():
                    shutil.rmtree(session_dir)
                for name in safe_extract(archive, session_dir):
                    log(f"  {name}")
            step = "session autorun"
            script = session_dir / AUTORUN_SH
            if not script.is_file():
                raise ArchiveError(
                    f"{AUTORUN_SH} is not in the session archive s3://{ud.bucket}/{key} "
                    "(`awsac start` adds it when it builds the archive; a prebuilt archive "
                    "needs its own copy)"
                )
            cmd = ["sh", str(script)] + (["--keep-instance"] if self.keep_instance else [])
            log(f"# trying to execute the AWSAC autostart shell script: {' '.join(cmd)}")
            t0 = time.monotonic()
            rc = subprocess.call(cmd, cwd=str(session_dir), env=dict(os.environ, **env))
            log(f"  {AUTORUN_SH} ended after {time.monotonic() - t0:.1f} s with returncode {rc}")
            if rc != 0:
                self.terminate(f"{AUTORUN_SH} failed (returncode {rc})")
            return rc
        except Exception as exc:  # noqa: BLE001 - any failure still ends the instance
            log.exception(f"# ERROR in step '{step}'", exc)
            self.terminate(f"step '{step}' failed: {describe(exc)}")
            return 1

    def start_lease_watchdog(self, lease_h: Optional[str]) -> Optional[threading.Timer]:
        """Terminate this instance when the session's lease (``lease_h`` hours) is over.

        The worker ends its jobs at the lease; this is the hard stop after a grace period
        (``lease_grace``) for anything that hangs (download, worker, tear down).
        """
        try:
            hours = float(lease_h) if lease_h else 0.0
        except ValueError:
            hours = 0.0
        if hours <= 0:
            return None
        seconds = hours * 3600
        grace = lease_grace(seconds)
        self.log(
            f"  session lease: {hours:g} h; this instance ends itself by then (+{grace:.0f} s)"
        )
        timer = threading.Timer(
            seconds + grace, self.terminate, args=(f"the session lease of {hours:g} h is over",)
        )
        timer.daemon = True
        timer.start()
        return timer

    def terminate(self, why: str) -> None:
        """Terminate this instance (so nothing leaks), unless --keep-instance."""
        log = self.log
        try:
            iid = self.imds.instance_id()
        except ImdsError as exc:
            log(f"  cannot terminate, instance id unknown: {exc}")
            return
        if self.keep_instance:
            log(f"# {why}; --keep-instance: not terminating {iid}")
            return
        log(f"# {why}: instructing EC2 to terminate my instance {iid}..")
        try:
            if self.region is None:
                self.region = os.environ.get("AWS_DEFAULT_REGION") or self.imds.region()
            self.clients.client("ec2", total=8).terminate_instances(InstanceIds=[iid])
        except Exception as exc:  # noqa: BLE001 - nothing left but to say so
            log(f"  TerminateInstances failed: {describe(exc)}")


def autorun(keep_instance: bool = False) -> int:
    """Run the boot step; returns the exit code."""
    return Autorun(keep_instance).run()
