"""AwsDeviceProvider finds a volume's NVMe disk by its serial (any model name, or sysfs alone) and
mounts it read-only for real; the agent's clients take the endpoint as an old boto3 needs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from awsac_agent.devices import AwsDeviceProvider, DeviceError, nvme_by_serial, nvme_serial
from needs import need_tool, needs


def _tree(tmp_path: Path) -> tuple[Path, Path]:
    dev, sys_root = tmp_path / "dev", tmp_path / "sys"
    (dev / "disk" / "by-id").mkdir(parents=True)
    (sys_root / "class" / "nvme").mkdir(parents=True)
    return dev, sys_root


def _controller(sys_root: Path, name: str, serial: str, namespace: str) -> None:
    ctrl = sys_root / "class" / "nvme" / name
    (ctrl / namespace).mkdir(parents=True)
    (ctrl / "serial").write_text(serial.ljust(20) + "\n")  # the kernel pads it with blanks


def test_by_id_link_of_any_model_is_matched_on_the_serial(tmp_path: Path) -> None:
    dev, sys_root = _tree(tmp_path)
    (dev / "nvme1n1").touch()
    (dev / "nvme2n1").touch()
    by_id = dev / "disk" / "by-id"
    (by_id / "nvme-QEMU_NVMe_Ctrl_vol0abc").symlink_to("../../nvme1n1")
    (by_id / "nvme-QEMU_NVMe_Ctrl_vol0abcd").symlink_to("../../nvme2n1")
    (by_id / "nvme-QEMU_NVMe_Ctrl_vol0abc-part1").symlink_to("../../nvme2n1")
    assert nvme_serial("vol-0abc") == "vol0abc"
    assert nvme_by_serial("vol0abc", dev, sys_root) == dev / "nvme1n1"
    prov = AwsDeviceProvider(dev_root=dev, sys_root=sys_root, poll=0.05)
    assert prov.find_device("vol-0abcd", "/dev/sdf", timeout=1) == str(dev / "nvme2n1")


def test_sysfs_serial_finds_the_namespace_without_udev(tmp_path: Path) -> None:
    dev, sys_root = _tree(tmp_path)
    _controller(sys_root, "nvme0", "vol0fff", "nvme0n1")
    _controller(sys_root, "nvme1", "vol0abc", "nvme1c1n1")  # native multipath naming
    (dev / "nvme0n1").touch()
    (dev / "nvme1n1").touch()
    prov = AwsDeviceProvider(dev_root=dev, sys_root=sys_root, poll=0.05)
    assert prov.find_device("vol-0abc", "/dev/sdf", timeout=1) == str(dev / "nvme1n1")
    assert prov.find_device("vol-0fff", "/dev/sdg", timeout=1) == str(dev / "nvme0n1")
    with pytest.raises(DeviceError, match=r"vol-0ab\b.*serial = vol0ab\b"):
        prov.find_device("vol-0ab", "/dev/sdh", timeout=0.1)


@needs(os.geteuid() == 0, "mount needs root (CI runs as root)")
def test_mount_is_real_and_read_only(tmp_path: Path) -> None:
    need_tool("mkfs.ext4", "e2fsprogs")
    content = tmp_path / "content"
    (content / "14.2.10").mkdir(parents=True)
    (content / "14.2.10" / "setup.sh").write_text("echo release\n")
    disk = tmp_path / "vol.ext4"
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(content), str(disk), "16M"], check=True)
    prov = AwsDeviceProvider()
    mnt = tmp_path / "mnt" / "snap-1"
    prov.mount(str(disk), mnt)
    try:
        assert (mnt / "14.2.10" / "setup.sh").read_text() == "echo release\n"
        found = subprocess.run(
            ["findmnt", "-n", "-o", "FSTYPE,OPTIONS", "--target", str(mnt)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert found[0] == "ext4" and "ro" in found[1].split(",")
        with pytest.raises(OSError):
            (mnt / "new").write_text("x")
    finally:
        prov.unmount(mnt)
    assert not (mnt / "14.2.10").exists()


def test_agent_clients_pass_the_endpoint_as_an_old_boto3_needs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Debian 12's boto3 (1.26) ignores AWS_ENDPOINT_URL: the agent passes it itself. Modern boto3
    is made to ignore the variable too, so only the explicit endpoint can pass this test."""
    from awsac_agent.aws import Clients

    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://169.254.169.250")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SDB", "http://127.0.0.1:9")
    clients = Clients("us-east-1")
    assert clients.s3.meta.endpoint_url == "http://169.254.169.250"
    assert clients.ec2.meta.endpoint_url == "http://169.254.169.250"
    assert clients.sdb.meta.endpoint_url == "http://127.0.0.1:9"
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.delenv("AWS_ENDPOINT_URL_SDB")
    assert "amazonaws.com" in Clients("us-east-1").s3.meta.endpoint_url
