"""The local cloud's Python API: start, find, stop, inspect and reset the background service.

Used by ``awsac local ...``, the client, the tests and the benchmarks.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
import urllib.error
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from awsac_agent.errors import AwsacError

from awsac_tui.local.common import (
    AVAILABILITY_ZONE,
    DEFAULT_BOOT_DELAY,
    DUMMY_ACCESS_KEY_ID,
    DUMMY_SECRET_ACCESS_KEY,
    REGION,
    STATE_ERROR_EXIT,
    STATE_ERROR_MARK,
    code_pythonpath,
    default_boot_command,
    kill_process_group,
    local_dir,
    pid_alive,
    remove_tree,
    side_call,
    state_dir,
)

__all__ = [
    "DownReport",
    "LocalCloudError",
    "LocalCloudInfo",
    "LocalCloudStatus",
    "client_env",
    "configure",
    "configure_ec2",
    "describe_state",
    "down",
    "ensure_up",
    "interrupt",
    "local_dir",
    "make_snapshot",
    "reset",
    "running_info",
    "state_dir",
    "status",
]

READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0
SNAPSHOT_TAG = "awsac:local-content"

# service processes this process started, so it can reap them at down()
_children: dict[int, subprocess.Popen[bytes]] = {}


class LocalCloudError(AwsacError):
    """The local cloud could not be started, reached or used."""


@dataclass(frozen=True)
class LocalCloudInfo:
    """Where the running local cloud answers (the content of service.json)."""

    endpoint: str
    pid: int
    region: str
    account_id: str
    image_id: str
    state_dir: str
    runner: str = "process"  # what instances run on: "process", or "vm" (QEMU, `up --vm`)
    # what the service found on disk at its start (persistence.RestoreSummary, plus saved_in)
    state: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class LocalCloudStatus:
    """What the local cloud holds right now."""

    info: LocalCloudInfo
    instances: tuple[dict[str, Any], ...]
    volumes: tuple[dict[str, Any], ...]
    snapshots: tuple[dict[str, Any], ...]
    domains: tuple[str, ...]
    saving_error: str | None = None  # the last failure to write the state to disk, if any

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self.info),
            "instances": list(self.instances),
            "volumes": list(self.volumes),
            "snapshots": list(self.snapshots),
            "domains": list(self.domains),
            "saving_error": self.saving_error,
        }


@dataclass(frozen=True)
class DownReport:
    """What ``down()`` did: whether a service ran, and the instance processes it had to end."""

    was_running: bool
    strays_ended: tuple[int, ...] = ()  # instance processes found after the service stopped
    strays_left: tuple[int, ...] = ()  # ... that could not be ended


# ---- finding the running service ----------------------------------------------------------------


def _service_file() -> Path:
    return local_dir() / "service.json"


def _read_service_file() -> LocalCloudInfo | None:
    try:
        data = json.loads(_service_file().read_text())
        return LocalCloudInfo(
            endpoint=data["endpoint"],
            pid=int(data["pid"]),
            region=data["region"],
            account_id=data["account_id"],
            image_id=data["image_id"],
            state_dir=data["state_dir"],
            runner=data.get("runner", "process"),
            state=dict(data.get("state") or {}),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _side(
    endpoint: str, name: str, payload: dict[str, Any] | None = None, timeout: float = 5.0
) -> Any:
    """Call a side endpoint of the server with the owner's token (common.side_call)."""
    return side_call(endpoint, name, payload, timeout=timeout)


def _answers(info: LocalCloudInfo) -> bool:
    if not pid_alive(info.pid):
        return False
    try:
        health = _side(info.endpoint, "health", timeout=3.0)
    except (OSError, ValueError):
        return False
    return health.get("pid") == info.pid


def running_info() -> LocalCloudInfo | None:
    """The running local cloud of this state directory, or None when none answers."""
    info = _read_service_file()
    if info is not None and _answers(info):
        return info
    return None


@contextlib.contextmanager
def _up_lock() -> Iterator[None]:
    local = local_dir()
    local.mkdir(parents=True, exist_ok=True)
    with (local / "up.lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# ---- up / down ----------------------------------------------------------------------------------


def _say_on_terminal(text: str) -> None:
    if sys.stderr is not None and sys.stderr.isatty():
        print(text, file=sys.stderr, flush=True)


def ensure_up(
    *,
    boot_delay: float | None = None,
    boot_command: list[str] | None = None,
    vm: bool | None = None,
    say: Callable[[str], None] | None = _say_on_terminal,
) -> LocalCloudInfo:
    """Start the local cloud unless it runs already; wait until it answers.

    ``boot_delay`` and ``boot_command`` (when given) also apply to a service that runs already.
    ``vm=True`` starts it with the VM runner (building the VM images first when they are missing,
    reporting through ``say``); a running service with the other runner is an error.
    A start is never silent: ``say`` (default: stderr when it is a terminal) gets one line on
    what it restored, or that it is new and empty.
    """
    with _up_lock():
        info = running_info()
        if info is not None and vm is not None and (info.runner == "vm") != vm:
            wanted = "the VM runner (--vm)" if vm else "the process runner"
            raise LocalCloudError(
                f"the local cloud runs with the {info.runner} runner, not {wanted}; "
                f"stop it with `awsac local down`, then `awsac local up{' --vm' if vm else ''}`"
            )
        if info is None:
            if vm:
                from awsac_tui.local import image

                image.ensure_images(say or (lambda line: print(line, file=sys.stderr)))
            info = _start(
                DEFAULT_BOOT_DELAY if boot_delay is None else boot_delay,
                boot_command if boot_command is not None else default_boot_command(),
                vm=bool(vm),
            )
            if say is not None:
                say(f"awsac: started the local cloud at {info.endpoint}; {describe_state(info)}")
        elif boot_delay is not None or boot_command is not None:
            configure(info, boot_delay=boot_delay, boot_command=boot_command)
    return info


def configure(
    info: LocalCloudInfo,
    *,
    boot_delay: float | None = None,
    boot_command: list[str] | None = None,
    faults: str | None = None,
    shutdown_grace: float | None = None,
) -> dict[str, Any]:
    """Change the boot delay, boot command, shutdown grace (seconds between an instance's SIGTERM
    and SIGKILL at shutdown; 10 s unless set) and/or the local cloud's own fault rules
    (``cloud:...`` of the AWSAC_FAULTS format, e.g. ``cloud:spot-interrupt:share=0.5:seed=7``; ""
    clears them) of the running service, for later launches."""
    payload: dict[str, Any] = {
        "boot_delay": boot_delay,
        "boot_command": boot_command,
        "shutdown_grace": shutdown_grace,
    }
    if faults is not None:
        payload["faults"] = faults
    try:
        return _side(info.endpoint, "config", payload)
    except urllib.error.HTTPError as exc:
        raise LocalCloudError(f"the local cloud refused the settings: {_error_of(exc)}") from exc


def interrupt(instance_id: str, notice: float = 120.0) -> dict[str, Any]:
    """Serve a spot interruption notice to ``instance_id``; EC2's reclaim follows after ``notice`` s.

    Returns {"instance_id", "action", "noticed", "time", "notice_s", "state_reason"}.
    """
    info = _require()
    try:
        return _side(info.endpoint, "interrupt", {"instance_id": instance_id, "notice": notice})
    except urllib.error.HTTPError as exc:
        raise LocalCloudError(f"cannot interrupt {instance_id}: {_error_of(exc)}") from exc


def _error_of(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read()).get("error") or exc)
    except (OSError, ValueError, AttributeError):
        return str(exc)


def configure_ec2(info: LocalCloudInfo, **settings: Any) -> dict[str, Any]:
    """Change the account limits and EBS timing of the running service; returns them all.

    Keys (each optional; None lifts a limit): ``vcpu_quota`` (vCPUs of pending and running
    instances), ``instance_limit`` (instances at once), ``capacity`` ({instance type: at most at
    once}), ``ebs_delay`` (seconds new volumes stay `creating` and snapshots `pending`).
    """
    return _side(info.endpoint, "ec2", settings)


def _start(boot_delay: float, boot_command: list[str], vm: bool = False) -> LocalCloudInfo:
    local = local_dir()
    local.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        _service_file().unlink()
    # processes of a service that died without down() (its inits power off by themselves)
    _end_strays()
    env = dict(os.environ)
    env.update(
        {
            "PYTHONPATH": code_pythonpath(),
            "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.pop("AWS_PROFILE", None)
    command = [
        sys.executable,
        "-m",
        "awsac_tui.local.server",
        "--local-dir",
        str(local),
        "--boot-delay",
        str(boot_delay),
        "--boot-command",
        json.dumps(boot_command),
        *(["--vm"] if vm else []),
    ]
    log_path = local / "service.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=local,
            start_new_session=True,
        )
    _children[process.pid] = process
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _children.pop(process.pid, None)
            _raise_state_error(process.returncode, log_path)
            raise LocalCloudError(
                f"the local cloud exited at start (code {process.returncode}); "
                f"see {log_path}:\n{_tail(log_path)}"
            )
        info = _read_service_file()
        if info is not None and info.pid == process.pid and _answers(info):
            return info
        time.sleep(0.1)
    _stop_pid(process.pid)
    raise LocalCloudError(
        f"the local cloud did not answer within {READY_TIMEOUT_S:.0f} s; see {log_path}"
    )


def _raise_state_error(code: int | None, log_path: Path) -> None:
    """The service refused to start because its saved state cannot be read: say so and how on."""
    if code != STATE_ERROR_EXIT:
        return
    lines = [ln for ln in _tail(log_path, 50).splitlines() if STATE_ERROR_MARK in ln]
    why = lines[-1].split(STATE_ERROR_MARK, 1)[1] if lines else f"see {log_path}"
    raise LocalCloudError(
        f"the local cloud did not start: {why}. Nothing was changed. To start anew, forget the "
        "saved state with `awsac local reset` (every bucket, object, snapshot, volume and "
        "domain is lost), or use the awsac and moto versions that wrote it."
    )


def describe_state(info: LocalCloudInfo) -> str:
    """One line on what the service restored at its start (for up, status and the demo)."""
    state = info.state
    where = state.get("saved_in") or str(local_dir() / "state")
    if not state:
        return f"state: kept in {where}"
    if state.get("reset"):
        return f"state: reset since up; kept in {where}"
    if not state.get("restored"):
        return f"state: no saved state in {where}: a new, empty local cloud"
    mib = state.get("object_bytes", 0) / 2**20
    parts = [
        f"{state.get('buckets', 0)} bucket(s) with {state.get('objects', 0)} object(s) "
        f"({mib:.1f} MiB)",
        f"{state.get('domains', 0)} domain(s) with {state.get('items', 0)} item(s)",
        f"{state.get('snapshots', 0)} snapshot(s)",
        f"{state.get('volumes', 0)} volume(s)",
        f"{state.get('key_pairs', 0)} key pair(s)",
        f"{state.get('instances', 0)} instance record(s)",
    ]
    line = f"state: restored from {where} in {state.get('seconds', 0):.2f} s: " + ", ".join(parts)
    ended = state.get("terminated_at_restore") or []
    if ended:
        line += (
            f"; {len(ended)} instance(s) that ran when it went down are terminated now: "
            + ", ".join(ended)
        )
    return line


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _reap(pid: int) -> None:
    child = _children.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=5)


def _is_service(pid: int) -> bool:
    """Whether ``pid`` is the local cloud's server of this state directory (not a reused pid)."""
    if not pid_alive(pid):
        return False
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"awsac_tui.local.server" in args and str(local_dir()).encode() in args


def _stop_pid(pid: int) -> None:
    """SIGTERM the service (it ends its instances), SIGKILL its group if it lingers."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        if pid in _children and _children[pid].poll() is not None:
            break
        if pid not in _children and not pid_alive(pid):
            break
        time.sleep(0.05)
    if pid in _children or _is_service(pid):  # never a group that took over a reused pid
        kill_process_group(pid)
    _reap(pid)


def _instance_pids() -> list[int]:
    """Pids recorded in instance.json (the instances' inits); may be stale after a reboot."""
    pids = []
    for record in (local_dir() / "instances").glob("*/instance.json"):
        try:
            pid = json.loads(record.read_text()).get("pid")
        except (OSError, ValueError):
            continue
        if isinstance(pid, int):
            pids.append(pid)
    return pids


def instance_processes() -> list[int]:
    """Every live process that belongs to an instance of this local cloud (runner.instance_processes)."""
    from awsac_tui.local.runner import instance_processes as of_instance

    found: list[int] = []
    for directory in sorted((local_dir() / "instances").glob("*/")):
        found.extend(p for p in of_instance(directory) if p not in found)
    return found


def _end_strays(wait_s: float = 5.0) -> tuple[list[int], list[int]]:
    """SIGKILL every instance process that is still alive; (ended, still alive after wait_s)."""
    found = instance_processes()
    for pid in found:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + wait_s
    while any(pid_alive(p) for p in found) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found, [p for p in found if pid_alive(p)]


def down() -> DownReport:
    """Stop the local cloud; then look for any instance process left and end it."""
    with _up_lock():
        info = _read_service_file()
        # the pid of a service that died may belong to another process by now: check it is ours
        was_running = info is not None and _is_service(info.pid)
        if info is not None and was_running:
            _stop_pid(info.pid)
            if _is_service(info.pid):
                raise LocalCloudError(
                    f"the local cloud (pid {info.pid}) did not stop; kill it by hand"
                )
        # the service shuts its instances down; a killed service's inits power off by themselves
        # (lifeline); anything still here after a moment is a stray and is ended now
        deadline = time.monotonic() + 5.0
        while instance_processes() and time.monotonic() < deadline:
            time.sleep(0.1)
        ended, left = _end_strays()
        with contextlib.suppress(FileNotFoundError):
            _service_file().unlink()
    return DownReport(was_running, tuple(ended), tuple(left))


def _require() -> LocalCloudInfo:
    info = running_info()
    if info is None:
        raise LocalCloudError("the local cloud is not running; start it with `awsac local up`")
    return info


def reset() -> LocalCloudInfo | None:
    """Forget every instance, volume, snapshot, bucket and domain, on disk too.

    With the service running it keeps running (the new info is returned); without, the saved
    state is removed so that the next ``up`` starts empty (None is returned).
    """
    with _up_lock():
        info = running_info()
        if info is None:
            _forget_offline()
            return None
    _side(info.endpoint, "reset", {}, timeout=120.0)
    new = _read_service_file()
    if new is None:
        raise LocalCloudError(
            f"the local cloud lost {_service_file()} at reset; run `awsac local down`"
        )
    return new


def _forget_offline() -> None:
    _end_strays()
    local = local_dir()
    for name in ("state", "instances", "volumes", "snapshots"):
        remove_tree(local / name)


# ---- clients, status, snapshots ------------------------------------------------------------------


def client_env(info: LocalCloudInfo) -> dict[str, str]:
    """Environment that points the AWS CLI or boto3 at the local cloud (dummy credentials)."""
    return {
        "AWS_ENDPOINT_URL": info.endpoint,
        "AWS_DEFAULT_REGION": info.region,
        "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
    }


def _client(info: LocalCloudInfo, service: str) -> Any:
    import boto3
    import botocore.session
    from awsac_agent.botoloader import share_loader

    session = boto3.session.Session(botocore_session=share_loader(botocore.session.Session()))
    return session.client(
        service,
        endpoint_url=info.endpoint,
        region_name=info.region,
        aws_access_key_id=DUMMY_ACCESS_KEY_ID,
        aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
    )


def status() -> LocalCloudStatus:
    """Endpoint, instances, volumes, snapshots and domains of the running local cloud."""
    info = _require()
    data = _side(info.endpoint, "status", timeout=30.0)
    return LocalCloudStatus(
        info,
        tuple(data["instances"]),
        tuple(data["volumes"]),
        tuple(data["snapshots"]),
        tuple(data["domains"]),
        data.get("saving_error"),
    )


def _size_gib(directory: Path) -> int:
    total = sum(
        p.stat().st_size for p in directory.rglob("*") if p.is_file() and not p.is_symlink()
    )
    return max(1, math.ceil(total / 2**30))


def _make_read_only(root: Path) -> None:
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    root.chmod(root.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def make_snapshot(directory: Path | str, description: str = "") -> str:
    """Create a real volume and snapshot in the local cloud holding DIR's content; its id."""
    source = Path(directory).expanduser()
    if not source.is_dir():
        raise LocalCloudError(f"{source} is not a directory; give the directory to snapshot")
    info = ensure_up()
    ec2 = _client(info, "ec2")
    volume_id = ec2.create_volume(AvailabilityZone=AVAILABILITY_ZONE, Size=_size_gib(source))[
        "VolumeId"
    ]
    # a new volume is `creating` and a new snapshot `pending` for a moment, as on EC2
    quick = {"Delay": 0.05, "MaxAttempts": 600}
    ec2.get_waiter("volume_available").wait(VolumeIds=[volume_id], WaiterConfig=quick)
    snapshot_id = ec2.create_snapshot(
        VolumeId=volume_id,
        Description=description or f"awsac local snapshot of {source.name}",
        TagSpecifications=[
            {"ResourceType": "snapshot", "Tags": [{"Key": SNAPSHOT_TAG, "Value": source.name}]}
        ],
    )["SnapshotId"]
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[snapshot_id], WaiterConfig=quick)
    ec2.delete_volume(VolumeId=volume_id)
    snapshots = local_dir() / "snapshots"
    snapshots.mkdir(parents=True, exist_ok=True)
    staging = snapshots / f".staging-{snapshot_id}"
    shutil.copytree(source, staging, symlinks=True)
    _make_read_only(staging)
    staging.chmod(staging.stat().st_mode | stat.S_IWUSR)
    os.replace(staging, snapshots / snapshot_id)
    (snapshots / snapshot_id).chmod((snapshots / snapshot_id).stat().st_mode & ~stat.S_IWUSR)
    return snapshot_id


def boto3_client(info: LocalCloudInfo, service: str) -> Any:
    """A boto3 client of ``service`` bound to the local cloud ``info`` (its dummy credentials),
    for tests, the benchmarks and scripts."""
    return _client(info, service)
