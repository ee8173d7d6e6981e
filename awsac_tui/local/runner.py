"""The instance runner: boots each instance the emulator launches, on a machine of its own.

Lives inside the local cloud's server process and hooks moto's in-process EC2 backend. The runner
holds the EC2 side (pending -> running, the metadata endpoint, records, console); a ``Machine``
(``ProcessMachine`` here: a process tree under its own init) is what an instance runs on. A boot
command of ``[]`` boots no process at all (``NoProcessMachine``), for benchmarks at scale.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from awsac_tui.local.common import (
    ACCOUNT_ID,
    instance_environment,
    kill_process_group,
    make_instance_root,
    pid_alive,
    write_json_atomic,
)
from awsac_tui.local.imds import InstanceMetadata, MetadataServer

log = logging.getLogger("awsac.local.runner")

CONSOLE_TAIL_BYTES = 64 * 1024  # EC2 returns the last 64 KB of console output
# At shutdown an instance's processes get SIGTERM, then SIGKILL after this grace (systemd gives a
# service 90 s). The agent needs it to record a lost job and upload its partial log; 3 s was too
# short on a loaded 2-core machine (CI lost attempt 1's log once). Processes that end on SIGTERM
# do not wait it out.
KILL_GRACE_S = 10.0


INSTANCE_INIT = Path(__file__).with_name("instance_init.py")


@dataclass(frozen=True)
class BootSpec:
    """What a machine needs to boot one instance."""

    instance_id: str
    directory: Path  # the instance's directory (instances/<id>/)
    root: Path  # its file system root, the boot command's cwd
    command: list[str]  # the boot command
    env: dict[str, str]  # the boot command's environment (common.instance_environment)
    console: Path  # where everything the instance prints goes (GetConsoleOutput reads it)
    exit_file: Path  # where the boot command's exit code goes when it exits
    grace: float = 3.0  # at shutdown: seconds between SIGTERM and SIGKILL


class Machine(Protocol):
    """What one instance runs on. The runner boots it at running and shuts it down at stop or
    terminate; ``ProcessMachine`` is a process tree, a VM runner gives its own class."""

    def boot(self) -> None:
        """Start the instance (its boot command); failures go to the console, not raised."""

    def shutdown(self) -> None:
        """End everything of the instance: SIGTERM, then SIGKILL after the spec's grace; blocks."""

    def alive(self) -> bool:
        """Whether the machine still runs (its boot command may have exited)."""

    @property
    def pid(self) -> int | None:
        """The host pid that stands for the machine (recorded in instance.json), if any."""


MachineFactory = Callable[[BootSpec], Machine]


class ProcessMachine:
    """An instance as a process tree on this machine, under its own init (instance_init.py).

    The init is a child subreaper, so nothing the boot command starts (``setsid``, ``nohup``,
    ``env -i``, double forks) outlives the instance; it also ends everything when the local
    cloud's process dies (end of file on the lifeline pipe), as a host crash would.
    """

    def __init__(self, spec: BootSpec, lifeline: int | None = None) -> None:
        self.spec = spec
        self.lifeline = lifeline
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def command(self) -> list[str]:
        init = [
            sys.executable,
            "-I",
            str(INSTANCE_INIT),
            "--instance-dir",
            str(self.spec.directory),
            "--exit-file",
            str(self.spec.exit_file),
            "--grace",
            str(self.spec.grace),
        ]
        if self.lifeline is not None:
            init += ["--lifeline", str(self.lifeline)]
        return init + ["--", *self.spec.command]

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def boot(self) -> None:
        with self.spec.console.open("ab") as console:
            try:
                self.process = subprocess.Popen(
                    self.command(),
                    cwd=self.spec.root,
                    env=self.spec.env,
                    stdin=subprocess.DEVNULL,
                    stdout=console,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    pass_fds=(self.lifeline,) if self.lifeline is not None else (),
                )
            except OSError as exc:
                console.write(
                    f"awsac local: cannot start boot command {self.spec.command}: {exc}\n".encode()
                )
                self.process = None

    def signal_shutdown(self) -> None:
        """Ask the init to end everything (SIGTERM); ``shutdown`` waits for it."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)

    def shutdown(self) -> None:
        process = self.process
        if process is None:
            return
        # the init SIGTERMs everything it holds, SIGKILLs it after its grace, then exits
        self.signal_shutdown()
        try:
            process.wait(timeout=self.spec.grace + 5.0)
        except subprocess.TimeoutExpired:
            log.error("init of %s did not end; killing its group", self.spec.instance_id)
        # whatever is left in the init's group (the init itself if it hung) goes now
        kill_process_group(process.pid, signal.SIGKILL)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log.error("process %s did not die after SIGKILL", process.pid)


class NoProcessMachine:
    """An instance that runs nothing (boot command ``[]``): EC2 shows it running, but it has no
    process and no metadata endpoint. For benchmarks of the client at scale, whose agents are
    emulated by writing their records from outside: 1,250 ``sleep`` instances would be 1,250
    init processes polling every 0.5 s and 1,250 metadata threads in the server, which a 2-core
    machine cannot hold without skewing what it measures."""

    def __init__(self, spec: BootSpec) -> None:
        self.spec = spec
        self._up = False

    @property
    def pid(self) -> int | None:
        return None

    def alive(self) -> bool:
        return self._up

    def boot(self) -> None:
        with self.spec.console.open("ab") as console:
            console.write(b"awsac local: this instance boots no process (boot command [])\n")
        self._up = True

    def shutdown(self) -> None:
        self._up = False


@dataclass
class _Runtime:
    """What the runner holds for one instance it booted."""

    instance_id: str
    directory: Path
    imds: MetadataServer | None = None
    machine: Machine | None = None
    ended: bool = False
    shut_down: threading.Event = field(default_factory=threading.Event)  # its processes are gone
    lock: threading.Lock = field(default_factory=threading.Lock)


class InstanceRunner:
    """Boots launched instances, serves their metadata, shuts their machines down at stop/terminate.

    ``machine_factory`` makes the machine each instance runs on (default: ``ProcessMachine``).
    """

    def __init__(
        self,
        local: Path,
        *,
        endpoint: str,
        region: str,
        boot_delay: float,
        boot_command: list[str],
        machine_factory: MachineFactory | None = None,
        kill_grace: float = KILL_GRACE_S,
    ) -> None:
        self.local = local
        self.endpoint = endpoint
        self.region = region
        self.boot_delay = boot_delay
        self.boot_command = list(boot_command)
        self.kill_grace = kill_grace
        self._runtimes: dict[str, _Runtime] = {}
        self._lock = threading.Lock()
        self._generation = 0  # bumped by stop_all: boots scheduled before it are dropped
        # the lifeline: its write end lives only in this process, so each instance's init sees
        # end of file when this process dies, however it dies, and powers its instance off
        self._lifeline_r, self._lifeline_w = os.pipe()
        self.machine_factory: MachineFactory = machine_factory or (
            lambda spec: ProcessMachine(spec, lifeline=self._lifeline_r)
        )
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
        if runtime is not None and runtime.machine is not None and runtime.machine.alive():
            return
        thread = threading.Thread(
            target=self._boot_safely, args=(instance, True, self._generation), daemon=True
        )
        thread.start()

    def ended(
        self,
        instance_id: str,
        *,
        terminated: bool,
        done: Callable[[], None] | None = None,
    ) -> bool:
        """An instance was stopped or terminated: shut its machine down, as a hypervisor would.

        Returns whether its processes are still being ended; ``done`` is called once they are
        gone (EC2 says ``terminated`` only then: an instance shutting down may still write).
        """
        with self._lock:
            runtime = self._runtimes.get(instance_id)
        if runtime is None:
            return False
        with runtime.lock:
            again = runtime.ended
            runtime.ended = True
            machine = runtime.machine
            imds = runtime.imds if terminated else None
            if terminated:
                runtime.imds = None
        if again:  # a second stop/terminate: the first shutdown goes on (or is over)
            if done is not None and not runtime.shut_down.is_set():
                threading.Thread(
                    target=lambda: (runtime.shut_down.wait(), done()), daemon=True
                ).start()
                return True
            return False
        threading.Thread(
            target=self._end,
            args=(runtime, machine, imds, done),
            name=f"end-{instance_id}",
            daemon=True,
        ).start()
        return True

    def serve_notice(self, instance_id: str, notice: Any) -> bool:
        """Serve a spot interruption notice (imds.SpotNotice) on the instance's metadata endpoint.

        False when the instance has no metadata endpoint (not booted, or ended).
        """
        with self._lock:
            runtime = self._runtimes.get(instance_id)
        if runtime is None:
            return False
        with runtime.lock:
            if runtime.imds is None or runtime.ended:
                return False
            runtime.imds.spot_notice = notice
        return True

    # ---- volumes (for the metadata endpoint's device extension) -----------------------------

    def volume_attached(self, volume: Any) -> None:
        """AttachVolume happened. Processes need nothing: the metadata endpoint answers for
        attached volumes (volume_info); the VM runner hot-plugs a disk here."""

    def volume_detached(self, volume_id: str, instance_id: str) -> None:
        """DetachVolume happened (nothing to do for processes; the VM runner unplugs)."""

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
            root = make_instance_root(runtime.directory)
            with contextlib.suppress(FileNotFoundError):
                (runtime.directory / "exit_code").unlink()
            command = list(self.boot_command)
            if runtime.imds is None and command:  # no process, nobody asks for metadata
                runtime.imds = MetadataServer(
                    self._metadata(instance), lambda vol, inst=instance: self.volume_info(inst, vol)
                )
                runtime.imds.start()
            instance._state.name = "running"
            instance._state.code = 16
            imds_endpoint = runtime.imds.endpoint if runtime.imds is not None else None
            env = (
                instance_environment(
                    dict(os.environ),
                    endpoint=self.endpoint,
                    region=self.region,
                    imds_endpoint=imds_endpoint or "",
                    instance_dir=runtime.directory,
                )
                if command
                else {}
            )
            spec = BootSpec(
                instance_id=instance.id,
                directory=runtime.directory,
                root=root,
                command=command,
                env=env,
                console=self.console_path(instance.id),
                exit_file=runtime.directory / "exit_code",
                grace=self.kill_grace,
            )
            runtime.machine = self.machine_factory(spec) if command else NoProcessMachine(spec)
            runtime.machine.boot()
            pid = runtime.machine.pid
            write_json_atomic(
                runtime.directory / "instance.json",
                {
                    "instance_id": instance.id,
                    "reservation_id": self._reservation_id(instance),
                    "ami_launch_index": instance.ami_launch_index,
                    "imds_endpoint": imds_endpoint,
                    "endpoint": self.endpoint,
                    "region": self.region,
                    "root": str(root),
                    "pid": pid,
                    "boot_command": command,
                },
            )
            log.info("booted %s (pid %s): %s", instance.id, pid, command)

    def _end(
        self,
        runtime: _Runtime,
        machine: Machine | None,
        imds: MetadataServer | None,
        done: Callable[[], None] | None = None,
    ) -> None:
        try:
            if machine is not None:
                machine.shutdown()
                log.info("ended the processes of %s", runtime.instance_id)
            if not isinstance(machine, NoProcessMachine):  # a /proc scan per instance
                end_strays(runtime.directory)
        finally:
            runtime.shut_down.set()
            if done is not None:
                done()  # every process of it is gone: EC2 may say terminated
        if imds is not None:
            imds.stop()

    def stop_all(self) -> None:
        """Shut every machine and metadata endpoint down (service shutdown or reset)."""
        with self._lock:
            self._generation += 1
            runtimes = list(self._runtimes.values())
            self._runtimes.clear()
        ended: list[tuple[Machine | None, MetadataServer | None]] = []
        for runtime in runtimes:
            with runtime.lock:
                runtime.ended = True
                ended.append((runtime.machine, runtime.imds))
                runtime.imds = None
        # shut down in parallel: each machine has its own grace
        threads = [
            threading.Thread(target=machine.shutdown, daemon=True)
            for machine, _ in ended
            if machine is not None
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for _, imds in ended:
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
        for reservation in list(instance.ec2_backend.reservations.values()):
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
            life_cycle="spot" if getattr(instance, "lifecycle", None) == "spot" else "on-demand",
        )


def _proc_text(pid: int, name: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return b""


def _proc_cwd(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return ""


def instance_processes(instance_dir: Path) -> list[int]:
    """Live processes that belong to this instance, found without trusting recorded pids.

    A process belongs to it when its environment carries the instance's ``AWSAC_WORK_DIR``,
    when its working directory is inside the instance's directory (an ``env -i`` job keeps its
    cwd), or when it is the instance's init (its command line names the instance directory).
    """
    marker = f"AWSAC_WORK_DIR={instance_dir / 'root' / 'mnt' / 'awsac'}".encode()
    inside = str(instance_dir.resolve()) if instance_dir.exists() else str(instance_dir)
    init_arg = str(instance_dir).encode()
    found: list[int] = []
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        pid = int(entry.name)
        cwd = _proc_cwd(pid)
        cmdline = _proc_text(pid, "cmdline").split(b"\0")
        if (
            marker in _proc_text(pid, "environ").split(b"\0")
            or cwd == inside
            or cwd.startswith(inside + os.sep)
            or (INSTANCE_INIT.name.encode() in b" ".join(cmdline) and init_arg in cmdline)
        ) and pid_alive(pid):
            found.append(pid)
    return found


def end_strays(instance_dir: Path) -> list[int]:
    """SIGKILL every process still belonging to this instance, as a hypervisor would.

    The instance's init leaves nothing behind; this is the second line, for an init that was
    killed by hand.
    """
    killed: list[int] = []
    for pid in instance_processes(instance_dir):
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
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
