"""Fast checks of the VM images' cache keys and the VM runner's QEMU command line (no QEMU run)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from needs import needs

from awsac_tui.local import image


@pytest.fixture
def agent_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "awsac_agent"
    shutil.copytree(image.AGENT_PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(image, "AGENT_PACKAGE", copy)
    return copy


def test_baked_key_follows_the_agent_and_stock_key_does_not(agent_copy: Path) -> None:
    baked, stock = image.image_key("baked"), image.image_key("stock")
    (agent_copy / "__pycache__").mkdir()
    (agent_copy / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"compiled")
    assert image.image_key("baked") == baked  # compiled files are not content
    (agent_copy / "autorun.py").write_text((agent_copy / "autorun.py").read_text() + "\n# x\n")
    assert image.image_key("baked") != baked
    assert image.image_key("stock") == stock


def test_keys_follow_provision_sh_and_the_package_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    baked, stock, root = image.image_key("baked"), image.image_key("stock"), image.rootfs_key()
    script = tmp_path / "provision.sh"
    script.write_text(image.PROVISION.read_text() + "\n# changed\n")
    monkeypatch.setattr(image, "PROVISION", script)
    assert image.image_key("baked") != baked and image.image_key("stock") != stock
    assert image.rootfs_key() == root
    monkeypatch.setattr(image, "BASE_PACKAGES", (*image.BASE_PACKAGES, "procps"))
    assert image.rootfs_key() != root


def test_unknown_kind_and_missing_sources_are_user_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(image.ImageError, match="no VM image kind 'gold'"):
        image.image_key("gold")
    monkeypatch.setattr(image, "PROVISION", tmp_path / "ami" / "provision.sh")
    with pytest.raises(image.ImageError, match="source checkout"):
        image.image_key("baked")


def test_cache_dir_is_shared_by_state_dirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("AWSAC_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("AWSAC_STATE_DIR", str(tmp_path / "state"))
    assert image.cache_dir() == tmp_path / "xdg" / "awsac"
    monkeypatch.setenv("AWSAC_CACHE_DIR", str(tmp_path / "c"))
    assert image.vm_dir() == tmp_path / "c" / "vm"
    assert image.find_image("baked") is None  # nothing built in an empty cache


def test_metadata_answers_dated_api_versions_and_the_dynamic_listing() -> None:
    """cloud-init's Ec2 datasource asks /2009-04-04/... and crawls dynamic/instance-identity/."""
    import json
    import urllib.request

    from awsac_tui.local.imds import InstanceMetadata, MetadataServer

    md = InstanceMetadata(
        "i-0abc", "r-1", "ami-1", 0, "c5.large", "us-east-1a", "us-east-1", "10.0.0.1",
        "1.2.3.4", "h", "h", "123456789012", b"sid;bkt;a.tar.bz2;2",
    )  # fmt: skip
    server = MetadataServer(md, lambda _vol: None)
    server.start()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def get(path: str) -> str:
        put = urllib.request.Request(
            server.endpoint + "latest/api/token",
            method="PUT",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"},
        )
        token = opener.open(put, timeout=5).read().decode()
        req = urllib.request.Request(
            server.endpoint + path, headers={"X-aws-ec2-metadata-token": token}
        )
        return opener.open(req, timeout=5).read().decode()

    try:
        assert get("2009-04-04/meta-data/instance-id") == "i-0abc"
        assert "placement/" in get("2021-03-23/meta-data/").splitlines()
        assert get("2016-09-02/user-data") == "sid;bkt;a.tar.bz2;2"
        assert get("latest/dynamic/") == "instance-identity/"
        assert get("2009-04-04/dynamic/instance-identity/") == "document"
        doc = json.loads(get("2009-04-04/dynamic/instance-identity/document"))
        assert doc["instanceId"] == "i-0abc" and doc["region"] == "us-east-1"
    finally:
        server.stop()


def _spec(tmp_path: Path, **extra: object) -> object:
    from awsac_tui.local import vm

    return vm.QemuSpec(
        name="awsac-i-0abc",
        kernel=tmp_path / "vmlinuz",
        initrd=tmp_path / "initrd.img",
        disk=tmp_path / "disk.qcow2",
        console=tmp_path / "console.log",
        qmp=tmp_path / "qmp.sock",
        imds_port=4001,
        emulator_port=4002,
        accel="tcg",
        config=vm.VmConfig(),
        instance_type="c5.large",
        system_uuid=vm.smbios_uuid(),
        env=vm.guest_environment(
            {
                "AWSAC_POLL_SECONDS": "2",
                "AWSAC_WORK_DIR": "/host/path",
                "AWSAC_VM_MEMORY_MB": "256",
                "AWSAC_FAULTS": "has space",
                "PATH": "/usr/bin",
            }
        ),
        **extra,
    )


def test_qemu_command_is_an_ec2_like_machine_on_its_own_network(tmp_path: Path) -> None:
    from awsac_tui.local import vm

    spec = _spec(tmp_path, volumes=(("vol-0abc", tmp_path / "vol.qcow2"),))
    cmd = vm.qemu_command(spec)
    joined = " ".join(cmd)
    netdev = cmd[cmd.index("-netdev") + 1]
    assert "restrict=on" in netdev.split(",") and "net=169.254.0.0/16" in netdev
    # guestfwd in its cmd: form (a tcp: forward connects once only), one per endpoint
    assert "guestfwd=tcp:169.254.169.254:80-cmd:socat - TCP:127.0.0.1:4001" in netdev
    assert "guestfwd=tcp:169.254.169.250:80-cmd:socat - TCP:127.0.0.1:4002" in netdev
    smbios = dict(kv.split("=", 1) for kv in cmd[cmd.index("-smbios") + 1].split(","))
    uuid = cmd[cmd.index("-uuid") + 1]
    assert uuid.startswith("ec2") and smbios["serial"] == uuid  # what ds-identify calls AWS
    assert smbios["manufacturer"] == "Amazon EC2" and smbios["product"] == "c5.large"
    append = cmd[cmd.index("-append") + 1].split()
    assert {"root=/dev/vda", "console=ttyS0"} <= set(append)
    assert "systemd.setenv=AWS_ENDPOINT_URL=http://169.254.169.250" in append
    assert "systemd.setenv=AWSAC_POLL_SECONDS=2" in append
    assert not [a for a in append if "WORK_DIR" in a or "VM_MEMORY" in a or "FAULTS" in a]
    assert ["-m", "512", "-smp", "1"] == cmd[cmd.index("-m") : cmd.index("-m") + 4]
    assert "tcg,tb-size=64" in cmd and "qemu64" in cmd
    # a volume attached while stopped is given at boot with the Nitro serial
    assert "nvme,id=nvme-vol0abc,serial=vol0abc,drive=blk-vol0abc" in cmd
    assert f"unix:{tmp_path / 'qmp.sock'},server=on,wait=off" in joined


@needs(shutil.which("qemu-img"), "qemu-img is not installed (apt-get install qemu-utils)")
def test_volume_disk_is_an_overlay_of_the_snapshot_ext4(tmp_path: Path) -> None:
    import subprocess

    from awsac_tui.local import vm

    content = tmp_path / "snap"
    (content / "14.2.10").mkdir(parents=True)
    (content / "14.2.10" / "setup.sh").write_text("echo hi\n")
    base = vm.ext4_image(content, tmp_path / "snap.ext4", 0)
    listing = subprocess.run(
        ["debugfs", "-R", "ls -l /14.2.10", str(base)], capture_output=True, text=True
    ).stdout
    assert "setup.sh" in listing
    disk = vm.overlay(base, tmp_path / "vol-0abc.qcow2", "raw")
    info = json.loads(
        subprocess.run(
            ["qemu-img", "info", "--output=json", str(disk)], capture_output=True, text=True
        ).stdout
    )
    assert info["format"] == "qcow2" and info["backing-filename"] == str(base)
    empty = vm.ext4_image(None, tmp_path / "vol-0def.ext4", 1)
    assert empty.stat().st_size == 2**30


def test_only_data_volumes_become_nvme_disks() -> None:
    """The instance's root volume (moto attaches one at launch) is the image's own disk."""
    from types import SimpleNamespace

    from awsac_tui.local.vm import VmRunner

    instance = SimpleNamespace(id="i-1", root_device_name="/dev/sda1")
    other = SimpleNamespace(id="i-2", root_device_name="/dev/sda1")

    def volume(device: str, to: object) -> object:
        return SimpleNamespace(attachment=SimpleNamespace(instance=to, device=device))

    assert VmRunner._data_volume(volume("/dev/sdf", instance), instance)
    assert not VmRunner._data_volume(volume("/dev/sda1", instance), instance)
    assert not VmRunner._data_volume(volume("/dev/sdf", other), instance)
    assert not VmRunner._data_volume(SimpleNamespace(attachment=None), instance)
