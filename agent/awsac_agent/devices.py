"""Block devices of attached volumes: find them and mount them read-only, behind a small interface.

``AwsDeviceProvider`` handles Nitro (NVMe, found by its serial: the volume id) and Xen (device
name) instances, and the local cloud's VMs (NVMe disks with the same serial);
``LocalDeviceProvider`` (``AWSAC_DEVICE_PROVIDER=local``) asks the local cloud's metadata endpoint.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path
from typing import List, Optional

from .errors import AwsacError
from .imds import Imds


class DeviceError(AwsacError):
    """A volume's block device did not appear, or could not be mounted or unmounted."""


class DeviceProvider:
    """Find an attached volume's device, mount it read-only at a mount point, unmount it."""

    def find_device(self, volume_id: str, device_name: str, timeout: float) -> str:
        raise NotImplementedError

    def mount(self, device: str, mountpoint: Path) -> None:
        raise NotImplementedError

    def unmount(self, mountpoint: Path) -> None:
        raise NotImplementedError


def nvme_serial(volume_id: str) -> str:
    """The NVMe serial of a volume's disk on Nitro: the volume id without its dash."""
    return volume_id.replace("-", "")


def nvme_path(volume_id: str, by_id: Path = Path("/dev/disk/by-id")) -> Path:
    """The Nitro NVMe by-id link for a volume (its serial is the volume id without the dash)."""
    return by_id / f"nvme-Amazon_Elastic_Block_Store_{nvme_serial(volume_id)}"


def nvme_by_serial(
    serial: str, dev_root: Path = Path("/dev"), sys_root: Path = Path("/sys")
) -> Optional[Path]:
    """The block device of the NVMe disk with ``serial``, or None.

    udev's ``/dev/disk/by-id/nvme-<model>_<serial>`` link first (the model differs between
    clouds and virtual hardware, so only the serial is matched), else the controllers' serials in
    ``/sys/class/nvme/*/serial`` (padded with blanks) and their first namespace.
    """
    for link in sorted((dev_root / "disk" / "by-id").glob(f"nvme-*_{serial}")):
        if link.exists():
            return link.resolve()
    for ctrl in sorted((sys_root / "class" / "nvme").glob("nvme*")):
        try:
            found = (ctrl / "serial").read_text().strip()
        except OSError:
            continue
        if found != serial:
            continue
        names = sorted(
            (n.name for n in ctrl.iterdir() if re.fullmatch(r"nvme\d+(c\d+)?n\d+", n.name)),
            key=lambda n: (len(n), n),
        )
        for name in names:
            device = dev_root / re.sub(r"c\d+n", "n", name)  # nvme0c0n1 (multipath) -> nvme0n1
            if device.exists():
                return device
    return None


def xen_candidates(device_name: str) -> List[Path]:
    """Paths a Xen device name may appear as: /dev/sdf and its /dev/xvdf alias."""
    name = device_name.rsplit("/", 1)[-1]
    out = [Path("/dev") / name]
    if name.startswith("sd"):
        out.append(Path("/dev") / ("xvd" + name[2:]))
    elif name.startswith("xvd"):
        out.append(Path("/dev") / ("sd" + name[3:]))
    return out


class AwsDeviceProvider(DeviceProvider):
    """Real block devices: NVMe by-id links on Nitro, the device name (or xvd alias) on Xen."""

    def __init__(
        self, dev_root: Path = Path("/dev"), poll: float = 1.0, sys_root: Path = Path("/sys")
    ) -> None:
        self.by_id = dev_root / "disk" / "by-id"
        self.dev_root = dev_root
        self.sys_root = sys_root
        self.poll = poll

    def candidates(self, volume_id: str, device_name: str) -> List[Path]:
        """The Xen names of ``device_name`` (NVMe disks are found by serial, see find_device)."""
        name = device_name.rsplit("/", 1)[-1]
        return [self.dev_root / p.name for p in xen_candidates(name)]

    def find_device(self, volume_id: str, device_name: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        serial = nvme_serial(volume_id)
        cands = self.candidates(volume_id, device_name)
        while True:
            nvme = nvme_by_serial(serial, self.dev_root, self.sys_root)
            if nvme is not None:
                return str(nvme)
            for c in cands:
                if c.exists():
                    return str(c.resolve())
            if time.monotonic() >= deadline:
                looked = [
                    str(self.by_id / f"nvme-*_{serial}"),
                    f"{self.sys_root / 'class' / 'nvme'}/*/serial = {serial}",
                ] + [str(c) for c in cands]
                raise DeviceError(
                    f"volume {volume_id}: no block device appeared within {timeout:.0f} s "
                    f"(looked for {', '.join(looked)})"
                )
            time.sleep(self.poll)

    def mount(self, device: str, mountpoint: Path) -> None:
        mountpoint.mkdir(parents=True, exist_ok=True)
        _run(["mount", "-o", "ro", device, str(mountpoint)], f"mount {device} at {mountpoint}")

    def unmount(self, mountpoint: Path) -> None:
        _run(["umount", str(mountpoint)], f"unmount {mountpoint}")


def _run(cmd: List[str], what: str) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DeviceError(f"{what}: {exc}") from exc
    if proc.returncode != 0:
        raise DeviceError(f"{what}: exit {proc.returncode}: {proc.stderr.strip()}")


class LocalDeviceProvider(DeviceProvider):
    """The local cloud: the metadata endpoint names a content dir, which is symlinked at the mount point."""

    def __init__(self, imds: Imds, poll: float = 0.5) -> None:
        self.imds = imds
        self.poll = poll

    def find_device(self, volume_id: str, device_name: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            info = self.imds.get_json(f"awsac-local/volumes/{volume_id}")
            if info and info.get("attached") and info.get("content_dir"):
                return str(info["content_dir"])
            if time.monotonic() >= deadline:
                raise DeviceError(
                    f"volume {volume_id}: the local cloud does not report it attached to this "
                    f"instance within {timeout:.0f} s"
                )
            time.sleep(self.poll)

    def mount(self, device: str, mountpoint: Path) -> None:
        if not Path(device).is_dir():
            raise DeviceError(f"local volume content {device} is not a directory")
        mountpoint.parent.mkdir(parents=True, exist_ok=True)
        if mountpoint.is_symlink():
            mountpoint.unlink()
        elif mountpoint.exists():
            mountpoint.rmdir()
        mountpoint.symlink_to(device, target_is_directory=True)

    def unmount(self, mountpoint: Path) -> None:
        if mountpoint.is_symlink():
            mountpoint.unlink()


def provider_from_env(imds: Optional[Imds] = None) -> DeviceProvider:
    """``AWSAC_DEVICE_PROVIDER=local`` selects the local cloud's provider; default: real devices."""
    kind = os.environ.get("AWSAC_DEVICE_PROVIDER", "aws").lower()
    if kind == "local":
        return LocalDeviceProvider(imds or Imds())
    if kind in ("aws", ""):
        return AwsDeviceProvider()
    raise DeviceError(f"AWSAC_DEVICE_PROVIDER={kind!r} is not known (use aws or local)")
