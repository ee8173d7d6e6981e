"""Fast checks of the VM images' cache keys and the VM runner's QEMU command line (no QEMU run)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

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
