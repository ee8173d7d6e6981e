"""The instance runner: boots each instance the emulator launches as a local child process.

Lives inside the local cloud's server process and hooks moto's in-process EC2 backend.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from awsac_tui.local.common import (
    ACCOUNT_ID,
    instance_environment,
    kill_process_group,
    write_json_atomic,
)
from awsac_tui.local.imds import InstanceMetadata, MetadataServer

log = logging.getLogger("awsac.local.runner")

CONSOLE_TAIL_BYTES = 64 * 1024  # EC2 returns the last 64 KB of console output
KILL_GRACE_S = 3.0


@dataclass
class _Runtime:
    """What the runner holds for one instance it booted."""

    instance_id: str
    directory: Path
    imds: MetadataServer | None = None
    process: subprocess.Popen[bytes] | None = None
    ended: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class InstanceRunner:
    """Boots launched instances, serves their metadata, ends their processes at stop/terminate."""

    def __init__(
        self,
        local: Path,
        *,
        endpoint: str,
        region: str,
        boot_delay: float,
        boot_command: list[str],
    ) -> None:
        self.local = local
        self.endpoint = endpoint
        self.region = region
        self.boot_delay = boot_delay
        self.boot_command = list(boot_command)
        self._runtimes: dict[str, _Runtime] = {}
        self._lock = threading.Lock()
        self._generation = 0  # bumped by stop_all: boots scheduled before it are dropped
        (local / "instances").mkdir(parents=True, exist_ok=True)

    # ---- paths -------------------------------------------------------------------------------

    def instance_dir(self, instance_id: str) -> Path:
        return self.local / "instances" / instance_id

    def console_path(self, instance_id: str) -> Path:
        return self.instance_dir(instance_id) / "console.log"

    def console_tail(self, instance_id: str) -> bytes:
        """The last 64 KB its process printed (empty when it never booted)."""
        path = self.console_path(instance_id)
        try:
            with path.open("rb") as fh:
                size = fh.seek(0, os.SEEK_END)
                fh.seek(max(0, size - CONSOLE_TAIL_BYTES))
                return fh.read()
        except FileNotFoundError:
            return b""

    # ---- hooks called from the patched backend ---------------------------------------------

    def launched(self, instances: list[Any]) -> None:
        """A new reservation: hold its instances pending, boot them after the boot delay."""
        for instance in instances:
            instance._state.name = "pending"
            instance._state.code = 0
        delay = max(0.0, self.boot_delay)
        for instance in instances:
            timer = threading.Timer(
                delay, self._boot_safely, args=(instance, False, self._generation)
            )
            timer.daemon = True
            timer.start()

    def started(self, instance: Any) -> None:
        """A stopped instance was started again: boot it again."""
        with self._lock:
            runtime = self._runtimes.get(instance.id)
        if runtime is not None and runtime.process is not None:
            if runtime.process.poll() is None:
                return
        thread = threading.Thread(
            target=self._boot_safely, args=(instance, True, self._generation), daemon=True
        )
        thread.start()

    def ended(self, instance_id: str, *, terminated: bool) -> None:
        """An instance was stopped or terminated: end its process tree, as a hypervisor would."""
        with self._lock:
            runtime = self._runtimes.get(instance_id)
        if runtime is None:
            return
        with runtime.lock:
            runtime.ended = True
            process = runtime.process
            imds = runtime.imds if terminated else None
            if terminated:
                runtime.imds = None
        threading.Thread(
            target=self._end, args=(runtime, process, imds), name=f"end-{instance_id}", daemon=True
        ).start()

    # ---- volumes (for the metadata endpoint's device extension) -----------------------------

    def volume_info(self, instance: Any, volume_id: str) -> dict[str, object] | None:
        """The local device view of ``volume_id`` when it is attached to ``instance``."""
        backend = instance.ec2_backend
        volume = backend.volumes.get(volume_id)
        if volume is None or volume.attachment is None:
            return None
        if volume.attachment.instance.id != instance.id:
            return None
        snapshot_id = volume.snapshot_id or None
        content = self.local / "snapshots" / snapshot_id if snapshot_id else None
        if content is None or not content.is_dir():
            content = self.local / "volumes" / volume_id
            content.mkdir(parents=True, exist_ok=True)
        return {
            "volume_id": volume_id,
            "instance_id": instance.id,
            "snapshot_id": snapshot_id,
            "attached": True,
            "device": volume.attachment.device,
            "content_dir": str(content),
        }

    # ---- boot and end ------------------------------------------------------------------------

    def _boot_safely(self, instance: Any, restart: bool, generation: int) -> None:
        try:
            self._boot(instance, restart, generation)
        except Exception:
            log.exception("boot of %s failed", instance.id)

    def _boot(self, instance: Any, restart: bool, generation: int) -> None:
        with self._lock:
            if generation != self._generation:
                return
            runtime = self._runtimes.get(instance.id)
            if runtime is None:
                runtime = _Runtime(instance.id, self.instance_dir(instance.id))
                self._runtimes[instance.id] = runtime
        with runtime.lock:
            expected = "running" if restart else "pending"
            if instance._state.name != expected:
                log.info("%s is %s, not booting it", instance.id, instance._state.name)
                return
            runtime.ended = False
            root = runtime.directory / "root"
            (root / "mnt").mkdir(parents=True, exist_ok=True)
            if runtime.imds is None:
                runtime.imds = MetadataServer(
                    self._metadata(instance), lambda vol, inst=instance: self.volume_info(inst, vol)
                )
                runtime.imds.start()
            instance._state.name = "running"
            instance._state.code = 16
            env = instance_environment(
                dict(os.environ),
                endpoint=self.endpoint,
                region=self.region,
                imds_endpoint=runtime.imds.endpoint,
                instance_dir=runtime.directory,
            )
            command = list(self.boot_command)
            with self.console_path(instance.id).open("ab") as console:
                try:
                    runtime.process = subprocess.Popen(
                        command,
                        cwd=root,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=console,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                except OSError as exc:
                    console.write(
                        f"awsac local: cannot start boot command {command}: {exc}\n".encode()
                    )
                    runtime.process = None
            pid = runtime.process.pid if runtime.process else None
            write_json_atomic(
                runtime.directory / "instance.json",
                {
                    "instance_id": instance.id,
                    "reservation_id": self._reservation_id(instance),
                    "ami_launch_index": instance.ami_launch_index,
                    "imds_endpoint": runtime.imds.endpoint,
                    "endpoint": self.endpoint,
                    "region": self.region,
                    "root": str(root),
                    "pid": pid,
                    "boot_command": command,
                },
            )
            log.info("booted %s (pid %s): %s", instance.id, pid, command)
            if runtime.process is not None:
                threading.Thread(
                    target=self._reap, args=(runtime, runtime.process), daemon=True
                ).start()

    def _reap(self, runtime: _Runtime, process: subprocess.Popen[bytes]) -> None:
        code = process.wait()
        (runtime.directory / "exit_code").write_text(f"{code}\n")
        log.info("process of %s exited with %s", runtime.instance_id, code)

    def _end(
        self,
        runtime: _Runtime,
        process: subprocess.Popen[bytes] | None,
        imds: MetadataServer | None,
    ) -> None:
        if process is not None:
            _end_process_group(process)
            log.info("ended the processes of %s", runtime.instance_id)
        end_strays(runtime.directory)
        if imds is not None:
            imds.stop()

    def stop_all(self) -> None:
        """End every instance's process tree and metadata endpoint (service shutdown or reset)."""
        with self._lock:
            self._generation += 1
            runtimes = list(self._runtimes.values())
            self._runtimes.clear()
        ended: list[tuple[subprocess.Popen[bytes] | None, MetadataServer | None]] = []
        for runtime in runtimes:
            with runtime.lock:
                runtime.ended = True
                ended.append((runtime.process, runtime.imds))
                runtime.imds = None
            if runtime.process is not None:
                kill_process_group(runtime.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + KILL_GRACE_S
        for process, imds in ended:
            if process is not None:
                _end_process_group(process, deadline)
            if imds is not None:
                imds.stop()
        for runtime in runtimes:
            end_strays(runtime.directory)

    def wipe(self) -> None:
        """Remove every instance directory (after stop_all, at reset)."""
        shutil.rmtree(self.local / "instances", ignore_errors=True)
        shutil.rmtree(self.local / "volumes", ignore_errors=True)
        (self.local / "instances").mkdir(parents=True, exist_ok=True)

    # ---- metadata ----------------------------------------------------------------------------

    @staticmethod
    def _reservation_id(instance: Any) -> str:
        for reservation in instance.ec2_backend.reservations.values():
            if instance in reservation.instances:
                return reservation.id
        return ""

    def _metadata(self, instance: Any) -> InstanceMetadata:
        user_data: bytes | None = None
        if instance.user_data:
            raw = instance.user_data
            encoded = raw.as_bytes() if hasattr(raw, "as_bytes") else str(raw).encode()
            try:
                user_data = base64.b64decode(encoded)
            except ValueError:
                user_data = encoded
        local_ip = instance.private_ip or "127.0.0.1"
        public_ip = instance.public_ip or local_ip
        return InstanceMetadata(
            instance_id=instance.id,
            reservation_id=self._reservation_id(instance),
            ami_id=instance.image_id or "",
            ami_launch_index=int(instance.ami_launch_index),
            instance_type=instance.instance_type,
            availability_zone=instance.placement.zone
            if getattr(instance.placement, "zone", None)
            else f"{self.region}a",
            region=self.region,
            local_ipv4=local_ip,
            public_ipv4=public_ip,
            public_hostname=instance.public_dns_name or instance.private_dns_name,
            local_hostname=instance.private_dns_name,
            account_id=ACCOUNT_ID,
            user_data=user_data,
        )


def _end_process_group(process: subprocess.Popen[bytes], deadline: float | None = None) -> None:
    """SIGTERM the process group, SIGKILL it after a grace period, reap the leader."""
    kill_process_group(process.pid, signal.SIGTERM)
    end = deadline if deadline is not None else time.monotonic() + KILL_GRACE_S
    try:
        process.wait(timeout=max(0.0, end - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    # members of the group may outlive the leader: always finish the group off
    kill_process_group(process.pid, signal.SIGKILL)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        log.error("process %s did not die after SIGKILL", process.pid)


def end_strays(instance_dir: Path) -> list[int]:
    """SIGKILL every process still running with this instance's environment, as a hypervisor would.

    Jobs run in their own sessions (process groups), so a worker killed with SIGKILL leaves them
    outside the boot process's group; they still carry the instance's ``AWSAC_WORK_DIR``.
    """
    marker = f"AWSAC_WORK_DIR={instance_dir / 'root' / 'mnt' / 'awsac'}".encode()
    killed: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
            except (ProcessLookupError, PermissionError):
                pass
    if killed:
        log.info("ended %d stray process(es) of %s: %s", len(killed), instance_dir.name, killed)
    return killed


def instance_record(local: Path, instance_id: str) -> dict[str, Any] | None:
    """The runner's record of a booted instance (instance.json), or None."""
    try:
        return json.loads((local / "instances" / instance_id / "instance.json").read_text())
    except (OSError, ValueError):
        return None
