"""The VM runner of the local cloud (``awsac local up --vm``): each instance is a QEMU machine.

The same service as the process runner; only the hardware changes. An instance boots a qcow2
overlay of its image (direct kernel boot), reaches its own metadata endpoint at 169.254.169.254
and the emulator through QEMU's guestfwd, prints to a serial console (GetConsoleOutput), is ended
through QMP, and gets each attached volume as a hot-plugged NVMe disk whose serial is the volume
id (as on Nitro), backed by an ext4 image of the snapshot's content.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import select
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from awsac_agent.devices import nvme_serial

from awsac_tui.local import image as images
from awsac_tui.local.common import IMAGE_ID, STOCK_IMAGE_ID, write_json_atomic
from awsac_tui.local.qmp import Qmp, QmpError
from awsac_tui.local.runner import BootSpec, InstanceRunner, ProcessMachine

log = logging.getLogger("awsac.local.vm")

QEMU = "qemu-system-x86_64"
QEMU_IMG = "qemu-img"
# The guest's link-local network (QEMU user networking, restrict=on: no other network at all).
GUEST_NET = "169.254.0.0/16"
IMDS_ADDRESS = "169.254.169.254"  # as on EC2
EMULATOR_ADDRESS = "169.254.169.250"  # the local cloud's API endpoint, seen from the guest
EMULATOR_URL = f"http://{EMULATOR_ADDRESS}"
KERNEL_ARGS = "root=/dev/vda rw console=ttyS0 net.ifnames=0"
QUIT_TIMEOUT_S = 10.0
DETACH_TIMEOUT_S = 30.0
PROBE_TIMEOUT_S = 8.0
WATCH_S = 0.5
IMAGE_KINDS = {IMAGE_ID: "baked", STOCK_IMAGE_ID: "stock"}
# What of an instance's environment (common.instance_environment) reaches a guest's systemd: the
# agent's AWSAC_* knobs, not the process runner's host paths nor the VM runner's own settings.
NOT_FOR_GUESTS = (
    "AWSAC_WORK_DIR",
    "AWSAC_PYTHON",
    "AWSAC_DEVICE_PROVIDER",
    "AWSAC_CACHE_DIR",
    "AWSAC_JOB_SCOPES",
)
NOT_FOR_GUESTS_PREFIXES = ("AWSAC_LOCAL_", "AWSAC_VM_", "AWSAC_DEBOOTSTRAP_")


@dataclass(frozen=True)
class VmConfig:
    """The virtual hardware of every instance: memory, vCPUs, accelerator (auto, kvm, tcg) and
    CPU model (empty: ``host`` under KVM, QEMU's default under TCG)."""

    memory_mb: int = 512
    cpus: int = 1
    accel: str = "auto"
    cpu_model: str = ""

    @classmethod
    def from_env(cls) -> VmConfig:
        return cls(
            memory_mb=int(os.environ.get("AWSAC_VM_MEMORY_MB") or 512),
            cpus=int(os.environ.get("AWSAC_VM_CPUS") or 1),
            accel=(os.environ.get("AWSAC_VM_ACCEL") or "auto").lower(),
            cpu_model=os.environ.get("AWSAC_VM_CPU_MODEL") or "",
        )


def guest_environment(instance_env: dict[str, str]) -> dict[str, str]:
    """What a guest's systemd gets as its environment (systemd.setenv= on the command line).

    The emulator's endpoint as the guest reaches it (AWS_ENDPOINT_URL, read by the agent), plus
    the agent's knobs from the instance environment the process runner would give.
    """
    out = {"AWS_ENDPOINT_URL": EMULATOR_URL}
    for name, value in sorted(instance_env.items()):
        if not name.startswith("AWSAC_") or name in NOT_FOR_GUESTS:
            continue
        if name.startswith(NOT_FOR_GUESTS_PREFIXES):
            continue
        if not value or any(c.isspace() or c in "\"'\\" for c in value):
            log.warning("%s is not handed to the VMs (empty, or blanks or quotes in it)", name)
            continue
        out[name] = value
    return out


def kernel_command_line(env: dict[str, str]) -> str:
    return " ".join([KERNEL_ARGS, *(f"systemd.setenv={k}={v}" for k, v in env.items())])


def smbios_uuid() -> str:
    """A system UUID that starts with 'ec2', as on EC2: cloud-init's ds-identify recognises AWS
    when the SMBIOS system UUID and serial both start with it and are equal."""
    return "ec2" + str(uuid.uuid4())[3:]


@dataclass(frozen=True)
class QemuSpec:
    """Everything one QEMU command line needs."""

    name: str
    kernel: Path
    initrd: Path
    disk: Path
    console: Path
    qmp: Path
    imds_port: int
    emulator_port: int
    accel: str
    config: VmConfig
    instance_type: str
    system_uuid: str
    env: dict[str, str] = field(default_factory=dict)
    volumes: tuple[tuple[str, Path], ...] = ()  # (volume id, disk) attached at boot


def qemu_command(spec: QemuSpec) -> list[str]:
    """The QEMU command line of one instance."""
    forward = "guestfwd=tcp:{addr}:80-cmd:socat - TCP:127.0.0.1:{port}"
    netdev = ",".join(
        [
            "user",
            "id=net0",
            f"net={GUEST_NET}",
            "restrict=on",
            forward.format(addr=IMDS_ADDRESS, port=spec.imds_port),
            forward.format(addr=EMULATOR_ADDRESS, port=spec.emulator_port),
        ]
    )
    accel = "kvm" if spec.accel == "kvm" else "tcg,tb-size=64"
    return [
        QEMU,
        "-name",
        spec.name,
        "-machine",
        "pc",
        "-accel",
        accel,
        "-cpu",
        spec.config.cpu_model or ("host" if spec.accel == "kvm" else "qemu64"),
        "-m",
        str(spec.config.memory_mb),
        "-smp",
        str(spec.config.cpus),
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-uuid",
        spec.system_uuid,
        "-smbios",
        f"type=1,manufacturer=Amazon EC2,product={spec.instance_type},serial={spec.system_uuid}",
        "-kernel",
        str(spec.kernel),
        "-initrd",
        str(spec.initrd),
        "-append",
        kernel_command_line(spec.env),
        "-drive",
        f"file={spec.disk},if=virtio,format=qcow2,cache=unsafe,discard=unmap",
        "-netdev",
        netdev,
        "-device",
        "virtio-net-pci,netdev=net0",
        "-device",
        "virtio-rng-pci",
        "-chardev",
        f"file,id=console,path={spec.console},append=on",
        "-serial",
        "chardev:console",
        "-qmp",
        f"unix:{spec.qmp},server=on,wait=off",
        *(arg for volume_id, disk in spec.volumes for arg in volume_args(volume_id, disk)),
    ]


def block_node(volume_id: str) -> str:
    return f"blk-{nvme_serial(volume_id)}"


def device_id(volume_id: str) -> str:
    return f"nvme-{nvme_serial(volume_id)}"


def volume_blockdev(volume_id: str, disk: Path) -> dict[str, Any]:
    """The block node of a volume's disk (a qcow2 overlay of the snapshot's ext4 image)."""
    return {
        "driver": "qcow2",
        "node-name": block_node(volume_id),
        "file": {"driver": "file", "filename": str(disk)},
    }


def volume_device(volume_id: str) -> dict[str, Any]:
    """The NVMe controller of a volume: its serial is the volume id without the dash, as on Nitro."""
    return {
        "driver": "nvme",
        "id": device_id(volume_id),
        "serial": nvme_serial(volume_id),
        "drive": block_node(volume_id),
    }


def volume_args(volume_id: str, disk: Path) -> list[str]:
    """The same volume given at boot (attached while the instance was stopped)."""
    device = volume_device(volume_id)
    return [
        "-blockdev",
        json.dumps(volume_blockdev(volume_id, disk)),
        "-device",
        "nvme," + ",".join(f"{k}={v}" for k, v in device.items() if k != "driver"),
    ]


# ---- the accelerator -------------------------------------------------------------------------


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def probe_kvm(kernel: Path, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a KVM guest gets as far as the kernel's first line on the serial console.

    On some hosts /dev/kvm opens and a vCPU is created, yet the guest hangs before the kernel
    prints anything; a short probe boot tells them apart.
    """
    command = [
        QEMU,
        "-machine",
        "pc",
        "-accel",
        "kvm",
        "-cpu",
        "host",
        "-m",
        "128",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
        "-serial",
        "stdio",
        "-kernel",
        str(kernel),
        "-append",
        "console=ttyS0 panic=-1",
    ]
    try:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
    except OSError:
        return False
    seen = b""
    deadline = time.monotonic() + timeout
    try:
        assert proc.stdout is not None
        while time.monotonic() < deadline and b"Linux version" not in seen:
            ready, _, _ = select.select([proc.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                seen += chunk
    finally:
        proc.kill()
        proc.wait()
    return b"Linux version" in seen


def choose_accelerator(config: VmConfig, kernel: Path) -> str:
    """kvm when asked for or when it works here (probed once per host boot), else tcg."""
    if config.accel in ("kvm", "tcg"):
        return config.accel
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg"
    cache = images.vm_dir() / "accel.json"
    with contextlib.suppress(OSError, ValueError):
        known = json.loads(cache.read_text())
        if known.get("boot_id") == _boot_id():
            return str(known["accel"])
    started = time.monotonic()
    accel = "kvm" if probe_kvm(kernel) else "tcg"
    log.info("accelerator probe: %s (%.1f s)", accel, time.monotonic() - started)
    with contextlib.suppress(OSError):
        cache.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(cache, {"boot_id": _boot_id(), "accel": accel})
    return accel


# ---- disks -----------------------------------------------------------------------------------


def _run(command: list[str], what: str, timeout: float = 300.0) -> None:
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise images.ImageError(f"{what}: {exc}") from exc
    if proc.returncode != 0:
        raise images.ImageError(f"{what}: exit {proc.returncode}: {proc.stderr.strip()[-500:]}")


def overlay(backing: Path, target: Path, backing_format: str) -> Path:
    """A copy-on-write qcow2 disk at ``target`` over ``backing`` (which is never written)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    _run(
        [QEMU_IMG, "create", "-q", "-f", "qcow2", "-F", backing_format, "-b", str(backing),
         str(target)],
        f"qemu-img create {target}",
    )  # fmt: skip
    return target


def ext4_image(content: Path | None, target: Path, size_gib: int) -> Path:
    """An ext4 file system image holding ``content`` (mkfs.ext4 -d), or empty of ``size_gib``."""
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    if content is not None:
        used = sum(p.lstat().st_size for p in content.rglob("*"))
        size = f"{max(32, used * 2 // 2**20 + 16)}M"
    else:
        size = f"{max(1, size_gib)}G"
    staging = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}")
    command = ["mkfs.ext4", "-q", "-F", "-E", "root_owner=0:0"]
    if content is not None:
        command += ["-d", str(content)]
    _run([*command, str(staging), size], f"mkfs.ext4 for {target.name}")
    os.replace(staging, target)
    return target


# ---- one instance: a QEMU machine under the process runner's init -----------------------------


class VmMachine:
    """One instance as a QEMU virtual machine (the runner's Machine for ``--vm``).

    QEMU runs as the boot command of the process runner's init (runner.ProcessMachine), so it is
    powered off with everything else when the local cloud's process dies.
    """

    def __init__(self, spec: BootSpec, runner: VmRunner, instance: Any) -> None:
        self.spec = spec
        self.runner = runner
        self.instance = instance
        self.qmp_path = spec.directory / "qmp.sock"
        self.disk = spec.directory / "disk.qcow2"
        self.inner: ProcessMachine | None = None
        self.ending = False
        self.accel = ""
        self.volumes: set[str] = set()  # volume ids plugged into this VM
        self.lock = threading.Lock()  # one QMP conversation at a time

    @property
    def pid(self) -> int | None:
        return self.inner.pid if self.inner is not None else None

    def alive(self) -> bool:
        return self.inner is not None and self.inner.alive() and not self.spec.exit_file.exists()

    def _say(self, text: str) -> None:
        with self.spec.console.open("ab") as console:
            console.write(f"awsac local: {text}\n".encode())

    def boot(self) -> None:
        try:
            command = self._prepare()
        except Exception as exc:  # noqa: BLE001 - a machine that cannot start powers off
            log.exception("VM of %s cannot start", self.spec.instance_id)
            self._say(f"the virtual machine cannot start: {exc}")
            # not from here: the runner holds this instance's lock while it boots the machine
            threading.Thread(
                target=self.runner.powered_off,
                args=(self.spec.instance_id, "Server.InternalError", str(exc)),
                daemon=True,
            ).start()
            return
        inner_spec = dataclasses.replace(
            self.spec, command=command, console=self.spec.directory / "qemu.log"
        )
        self.inner = ProcessMachine(inner_spec, lifeline=self.runner.lifeline)
        self.inner.boot()
        threading.Thread(
            target=self._watch, name=f"vm-{self.spec.instance_id}", daemon=True
        ).start()

    def _prepare(self) -> list[str]:
        kind = IMAGE_KINDS.get(self.instance.image_id)
        if kind is None:
            raise images.ImageError(
                f"no VM image for {self.instance.image_id}: the VM runner boots {IMAGE_ID} "
                f"(the awsac image) and {STOCK_IMAGE_ID} (the stock image)"
            )
        image = images.find_image(kind)
        if image is None:
            raise images.ImageError(
                f"the {kind} VM image is not built (or out of date): run `awsac local image build`"
            )
        if not self.disk.exists():
            overlay(image.disk, self.disk, "raw")
        with contextlib.suppress(FileNotFoundError):
            self.qmp_path.unlink()
        self.accel = self.runner.accelerator(image.kernel)
        spec = QemuSpec(
            name=f"awsac-{self.spec.instance_id}",
            kernel=image.kernel,
            initrd=image.initrd,
            disk=self.disk,
            console=self.spec.console,
            # relative to QEMU's working directory (the instance root): a socket's path may
            # not be longer than 107 bytes, and a state dir can be deep
            qmp=Path(os.path.relpath(self.qmp_path, self.spec.root)),
            imds_port=_port(self.spec.env["AWS_EC2_METADATA_SERVICE_ENDPOINT"]),
            emulator_port=_port(self.spec.env["AWS_ENDPOINT_URL"]),
            accel=self.accel,
            config=self.runner.config,
            instance_type=self.instance.instance_type,
            system_uuid=smbios_uuid(),
            env=guest_environment(self.spec.env),
            volumes=tuple(self.runner.attached_disks(self.instance)),
        )
        self.volumes = {volume_id for volume_id, _ in spec.volumes}
        command = qemu_command(spec)
        write_json_atomic(
            self.spec.directory / "vm.json",
            {"image": str(image.directory), "kind": kind, "accel": self.accel, "command": command},
        )
        log.info("VM of %s: %s image, %s", self.spec.instance_id, kind, self.accel)
        return command

    def _watch(self) -> None:
        """QEMU exits on its own when the guest powers off: the instance then stops or ends."""
        while not self.ending:
            if self.spec.exit_file.exists():
                if not self.ending:
                    log.info("the guest of %s powered off", self.spec.instance_id)
                    self.runner.powered_off(
                        self.spec.instance_id,
                        "Client.InstanceInitiatedShutdown",
                        "Instance initiated shutdown",
                    )
                return
            time.sleep(WATCH_S)

    def qmp(self) -> Qmp:
        return Qmp(self.qmp_path)

    def shutdown(self) -> None:
        """The hypervisor ends the VM (QMP quit), then its init and whatever is left."""
        self.ending = True
        if self.inner is None:
            return
        if self.alive():
            try:
                with self.lock, self.qmp() as qmp:
                    qmp.execute("quit")
            except (QmpError, OSError) as exc:
                log.info("QMP quit of %s: %s", self.spec.instance_id, exc)
            deadline = time.monotonic() + QUIT_TIMEOUT_S
            while not self.spec.exit_file.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
        self.inner.shutdown()

    # ---- volumes ---------------------------------------------------------------------------

    def attach(self, volume_id: str, disk: Path) -> None:
        """Hot-plug the volume as an NVMe disk (QMP blockdev-add + device_add)."""
        with self.lock, self.qmp() as qmp:
            qmp.execute("blockdev-add", **volume_blockdev(volume_id, disk))
            try:
                qmp.execute("device_add", **volume_device(volume_id))
            except QmpError:
                qmp.execute("blockdev-del", **{"node-name": block_node(volume_id)})
                raise
            self.volumes.add(volume_id)
        log.info("attached %s to %s (NVMe serial %s)", volume_id, self.spec.instance_id,
                 nvme_serial(volume_id))  # fmt: skip

    def detach(self, volume_id: str) -> None:
        """Unplug the volume's NVMe disk (device_del, the guest lets go, then blockdev-del)."""
        with self.lock, self.qmp() as qmp:
            qmp.execute("device_del", id=device_id(volume_id))
            gone = qmp.wait_event("DEVICE_DELETED", DETACH_TIMEOUT_S, device=device_id(volume_id))
            if gone is None:
                raise QmpError(
                    f"{volume_id}: the guest of {self.spec.instance_id} did not let go of its "
                    f"NVMe disk within {DETACH_TIMEOUT_S:.0f} s (still mounted?)"
                )
            qmp.execute("blockdev-del", **{"node-name": block_node(volume_id)})
            self.volumes.discard(volume_id)
        log.info("detached %s from %s", volume_id, self.spec.instance_id)


def _port(url: str) -> int:
    from urllib.parse import urlsplit

    port = urlsplit(url).port
    if port is None:
        raise ValueError(f"no port in {url}")
    return port


# ---- the runner ----------------------------------------------------------------------------------


class VmRunner(InstanceRunner):
    """The instance runner with QEMU machines (``awsac local up --vm``); the EC2 side is the same."""

    kind = "vm"

    def __init__(self, local: Path, **kwargs: Any) -> None:
        super().__init__(local, machine_factory=self._machine, **kwargs)
        self.config = VmConfig.from_env()
        self._instances: dict[str, Any] = {}
        self._accel: str | None = None
        self._accel_lock = threading.Lock()
        self._disk_lock = threading.Lock()

    @property
    def lifeline(self) -> int:
        return self._lifeline_r

    def launched(self, instances: list[Any]) -> None:
        for instance in instances:
            self._instances[instance.id] = instance
        super().launched(instances)

    def started(self, instance: Any) -> None:
        self._instances[instance.id] = instance
        super().started(instance)

    def _machine(self, spec: BootSpec) -> VmMachine:
        return VmMachine(spec, self, self._instances[spec.instance_id])

    def _vm(self, instance_id: str) -> VmMachine | None:
        with self._lock:
            runtime = self._runtimes.get(instance_id)
        machine = runtime.machine if runtime is not None else None
        return machine if isinstance(machine, VmMachine) else None

    def accelerator(self, kernel: Path) -> str:
        with self._accel_lock:
            if self._accel is None:
                self._accel = choose_accelerator(self.config, kernel)
            return self._accel

    def powered_off(self, instance_id: str, code: str, message: str) -> None:
        """The guest powered itself off (or never started): stopped or terminated, as its
        InstanceInitiatedShutdownBehavior says (EC2's default is stop)."""
        from moto.ec2.models.instances import StateReason

        instance = self._instances.get(instance_id)
        if instance is None or instance._state.name not in ("pending", "running"):
            return
        if instance.instance_initiated_shutdown_behavior == "terminate":
            instance.terminate()
        else:
            instance.stop()
        instance.state_reason = StateReason(f"{code}: {message}", code)

    # ---- volumes -----------------------------------------------------------------------------

    def volume_disk(self, volume: Any) -> Path:
        """The volume's own disk: a qcow2 overlay of its snapshot's ext4 image (made once)."""
        disk = self.local / "volumes" / f"{volume.id}.qcow2"
        with self._disk_lock:
            if disk.exists():
                return disk
            snapshot_id = volume.snapshot_id or None
            content = self.local / "snapshots" / snapshot_id if snapshot_id else None
            if content is not None and content.is_dir():
                base = ext4_image(content, self.local / "volumes" / f"{snapshot_id}.ext4", 0)
            else:
                base = ext4_image(None, self.local / "volumes" / f"{volume.id}.ext4", volume.size)
            return overlay(base, disk, "raw")

    @staticmethod
    def _data_volume(volume: Any, instance: Any) -> bool:
        """Attached to ``instance`` and not its root volume (the VM's root is the image's disk)."""
        attachment = volume.attachment
        return (
            attachment is not None
            and attachment.instance.id == instance.id
            and attachment.device != getattr(instance, "root_device_name", None)
        )

    def attached_disks(self, instance: Any) -> list[tuple[str, Path]]:
        """Data volumes attached to ``instance`` now (given to its VM at boot)."""
        volumes = list(instance.ec2_backend.volumes.values())
        return [(v.id, self.volume_disk(v)) for v in volumes if self._data_volume(v, instance)]

    def volume_attached(self, volume: Any) -> None:
        instance = volume.attachment.instance
        instance_id = instance.id
        machine = self._vm(instance_id)
        if machine is None or not machine.alive() or not self._data_volume(volume, instance):
            return  # a stopped instance gets it at its next boot

        def plug() -> None:
            try:
                machine.attach(volume.id, self.volume_disk(volume))
            except Exception:  # noqa: BLE001 - the guest simply never sees the disk
                log.exception("hot-plug of %s into %s failed", volume.id, instance_id)

        threading.Thread(target=plug, name=f"attach-{volume.id}", daemon=True).start()

    def volume_detached(self, volume_id: str, instance_id: str) -> None:
        machine = self._vm(instance_id)
        if machine is None or not machine.alive() or volume_id not in machine.volumes:
            return  # never plugged (a root volume), or the VM is gone with its disks

        def unplug() -> None:
            try:
                machine.detach(volume_id)
            except Exception:  # noqa: BLE001
                log.exception("unplug of %s from %s failed", volume_id, instance_id)

        threading.Thread(target=unplug, name=f"detach-{volume_id}", daemon=True).start()

    def _end(self, runtime: Any, machine: Any, imds: Any, *args: Any, **kwargs: Any) -> None:
        super()._end(runtime, machine, imds, *args, **kwargs)
        if imds is not None:  # terminated: its root disk goes
            with contextlib.suppress(FileNotFoundError):
                (runtime.directory / "disk.qcow2").unlink()
