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
