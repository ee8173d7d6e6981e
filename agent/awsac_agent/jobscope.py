"""One systemd scope per job, so that every process a job starts ends with it.

A job's process group does not hold a process that calls ``setsid`` (a ``nohup``-ed daemon, a
double fork, a ``setsid sleep 600 &``): it leaves the group, and ``killpg`` at the job's end misses
it. A cgroup holds it whatever it does. On an instance that runs systemd, the worker starts each
job as ``systemd-run --scope --unit=awsac-job-<session>-<job>-<attempt> -- /bin/sh script``
(``systemd-run --scope`` registers the scope and then *execs* the command, so the job's process is
still the worker's child), signals the whole scope with ``systemctl kill`` and, once the job's
main process has exited, kills what is left in the scope.

Where there is no systemd to ask (the local process runner, a container, a user without root),
jobs run in their own process group only, and the worker says so once in its log. The local
process runner holds each instance's processes with a child subreaper instead (docs/reliability.md).

``AWSAC_JOB_SCOPES=off`` turns scopes off; every other value (or none) means "where available".
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from typing import Callable, Dict, List, Mapping, Optional, Sequence

ENV_SWITCH = "AWSAC_JOB_SCOPES"
UNIT_PREFIX = "awsac-job-"
# systemd and systemctl answer in milliseconds; a hung bus must not hold the worker for long
PROBE_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
_UNSAFE = re.compile(r"[^A-Za-z0-9:_.\-]")
SYSTEMD_RUNTIME_DIR = "/run/systemd/system"  # exists when systemd is the running init


def unit_name(session_id: str, jobnr: int, attempt: int) -> str:
    """The scope's unit name (with ``.scope``): characters systemd refuses become ``_``."""
    return f"{UNIT_PREFIX}{_UNSAFE.sub('_', session_id)}-{jobnr}-{attempt}.scope"


def _why_unavailable(environ: Mapping[str, str], runtime_dir: str, root: bool) -> Optional[str]:
    """Why jobs cannot run in scopes here, or None when they can (before the probe)."""
    if environ.get(ENV_SWITCH, "").strip().lower() == "off":
        return f"{ENV_SWITCH}=off"
    if not os.path.isdir(runtime_dir):
        return "systemd is not this machine's init"
    if not root:
        return "the worker does not run as root"
    for tool in ("systemd-run", "systemctl"):
        if shutil.which(tool, path=environ.get("PATH")) is None:
            return f"{tool} is not on PATH"
    return None


class JobScopes:
    """The scopes of one worker's jobs (or the note why there are none)."""

    def __init__(
        self,
        log: Callable[[str], None],
        environ: Optional[Mapping[str, str]] = None,
        runtime_dir: str = SYSTEMD_RUNTIME_DIR,
        root: Optional[bool] = None,
    ) -> None:
        self._log = log
        self._pending: List["subprocess.Popen[bytes]"] = []
        env = os.environ if environ is None else environ
        self._path = env.get("PATH")
        self._tools = {
            t: shutil.which(t, path=self._path) or t for t in ("systemd-run", "systemctl")
        }
        is_root = os.geteuid() == 0 if root is None else root
        self.unavailable = _why_unavailable(env, runtime_dir, is_root)
        if self.unavailable is None:
            self.unavailable = self._probe()
        if self.unavailable is None:
            log("  each job runs in its own systemd scope (awsac-job-<session>-<job>-<attempt>)")
        else:
            log(f"  jobs run in their own process group only: {self.unavailable}")

    @property
    def enabled(self) -> bool:
        return self.unavailable is None

    def _probe(self) -> Optional[str]:
        """Start one empty scope: systemd-run can fail even where it exists (no bus, a chroot)."""
        argv = [self._tools["systemd-run"], "--scope", "--quiet", "--collect", "--", "/bin/true"]
        try:
            done = self._call(argv, PROBE_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"systemd-run did not answer ({exc})"
        if done.returncode != 0:
            said = (done.stderr or b"").decode("utf-8", "replace").strip().splitlines()
            return f"systemd-run --scope failed ({said[-1] if said else done.returncode})"
        return None

    def command(self, unit: str, argv: Sequence[str]) -> List[str]:
        """``argv`` as it starts inside the scope ``unit`` (unchanged without scopes)."""
        if not self.enabled:
            return list(argv)
        run = self._tools["systemd-run"]
        return [run, "--scope", "--quiet", "--collect", f"--unit={unit}", "--", *argv]

    def signal(self, unit: str, sig: int) -> None:
        """Send ``sig`` to every process of the scope, without waiting for systemctl's answer
        (the caller's loop handles kills and timeouts; the answer is reaped on a later call)."""
        self._reap()
        if not self.enabled:
            return
        name = signal.Signals(sig).name
        try:
            self._pending.append(
                subprocess.Popen(
                    [self._tools["systemctl"], "kill", f"--signal={name}", unit],
                    env=self._env(),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        except OSError as exc:
            self._log(f"  systemctl kill {unit}: {exc}")

    def stop(self, unit: str) -> None:
        """After the job's main process ended: kill what is left in its scope and wait (bounded)
        until systemd has done it, so no process of the job writes while its output is saved."""
        self._reap()
        if not self.enabled:
            return
        argv = [self._tools["systemctl"], "kill", "--signal=SIGKILL", unit]
        try:
            self._call(argv, STOP_TIMEOUT_S)
            # a scope whose processes are all gone is already collected: stop answers "not loaded"
            self._call([self._tools["systemctl"], "stop", unit], STOP_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            self._log(f"  stopping {unit}: {exc}")

    def _call(self, argv: List[str], timeout: float) -> "subprocess.CompletedProcess[bytes]":
        return subprocess.run(
            argv, capture_output=True, timeout=timeout, env=self._env(), stdin=subprocess.DEVNULL
        )

    def _env(self) -> Dict[str, str]:
        return {**os.environ, "PATH": self._path or os.defpath}

    def _reap(self) -> None:
        self._pending = [p for p in self._pending if p.poll() is None]
