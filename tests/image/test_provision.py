"""ami/provision.sh run into disposable roots: a plain directory tree (fast, host Python) and a
Debian debootstrap chroot (slow, the root's own Python and boto3 from its packages).

The chroot is a copy of the VM images' cached debootstrap root (awsac_tui.local.image), so a
machine pays debootstrap once for this test and the VM tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from needs import need

from .helpers import AMI, ROOT, need_tool

PROVISION = AMI / "provision.sh"

# Machine-specific state and secrets a build instance has; provision.sh must remove them.
PLANTED = (
    "etc/ssh/ssh_host_ed25519_key",
    "etc/ssh/ssh_host_ed25519_key.pub",
    "var/lib/cloud/instances/i-0abc/user-data.txt",
    "root/.bash_history",
    "home/ec2-user/.bash_history",
    "home/ec2-user/.ssh/authorized_keys",
    "var/lib/dbus/machine-id",
)


def _plant(root: Path) -> None:
    for rel in PLANTED:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("secret\n")
    (root / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    (root / "var/lib/cloud/instance").symlink_to("/var/lib/cloud/instances/i-0abc")


def _provision(
    root: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        ["sh", str(PROVISION), "--source", str(ROOT), "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def _assert_installed_and_clean(root: Path) -> None:
    assert (root / "opt/awsac/awsac_agent/__init__.py").is_file()
    assert (root / "opt/awsac/awsac_agent/session_files/awsac_all_instances_autorun.sh").is_file()
    assert not list((root / "opt/awsac").rglob("__pycache__"))
    wrapper = root / "usr/local/bin/awsac-agent"
    assert os.access(wrapper, os.X_OK)
    unit = root / "etc/systemd/system/awsac-autorun.service"
    assert unit.read_text() == (AMI / "awsac-autorun.service").read_text()
    link = root / "etc/systemd/system/multi-user.target.wants/awsac-autorun.service"
    assert os.readlink(link) == "/etc/systemd/system/awsac-autorun.service"
    assert (root / "mnt/awsac").is_dir()
    for rel in PLANTED:
        assert not (root / rel).exists(), f"{rel} is still in the image"
    assert not (root / "var/lib/cloud/instance").is_symlink()
    assert (root / "etc/machine-id").read_text() == ""


def test_provision_into_a_directory_tree(tmp_path: Path) -> None:
    """Without packages (host Python): files, service link, working dir and cleanup."""
    _plant(tmp_path)
    r = _provision(tmp_path, "--no-packages")
    assert "removing machine-specific state" in r.stdout
    _assert_installed_and_clean(tmp_path)
    # The installed package imports and its CLI answers, here with the host's Python.
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "opt/awsac"))
    out = subprocess.run(
        [sys.executable, "-m", "awsac_agent", "--help"], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "autorun" in out.stdout


def test_provision_refuses_bad_arguments(tmp_path: Path) -> None:
    for args, message in (
        (["--root", "relative/dir"], "must be an absolute path"),
        (["--root", str(tmp_path / "missing")], "does not exist"),
        (["--source", str(tmp_path), "--root", str(tmp_path)], "no agent package"),
        (["--frobnicate"], "unknown argument"),
    ):
        r = subprocess.run(["sh", str(PROVISION), *args], capture_output=True, text=True)
        assert r.returncode != 0
        assert message in r.stderr, (args, r.stderr)


def test_provision_keeps_state_with_no_clean(tmp_path: Path) -> None:
    _plant(tmp_path)
    _provision(tmp_path, "--no-packages", "--no-clean")
    assert all((tmp_path / rel).exists() for rel in PLANTED)


def test_provision_without_the_agent_makes_a_clean_stock_root(tmp_path: Path) -> None:
    """--no-agent (the local cloud's stock VM image): cleaned, but no agent and no boot service."""
    _plant(tmp_path)
    r = _provision(tmp_path, "--no-packages", "--no-agent")
    assert "without the agent" in r.stdout
    assert not (tmp_path / "opt/awsac").exists()
    assert not (tmp_path / "usr/local/bin/awsac-agent").exists()
    assert not (tmp_path / "etc/systemd/system/awsac-autorun.service").exists()
    for rel in PLANTED:
        assert not (tmp_path / rel).exists(), f"{rel} is still in the image"
    assert (tmp_path / "etc/machine-id").read_text() == ""


@pytest.fixture(scope="module")
def debian_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the cached minimal Debian root (debootstrap once per machine; needs root for
    chroot, and the mirror)."""
    from awsac_tui.local import image

    need_tool("debootstrap")
    need_tool("chroot")
    need(os.geteuid() == 0, "debootstrap and chroot need root (CI runs as root)")
    root = image.copy_rootfs(tmp_path_factory.mktemp("debian") / "root")
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.vm
@pytest.mark.timeout(1200)
def test_provision_into_a_debootstrap_chroot(debian_root: Path, tmp_path: Path) -> None:
    """The whole script, packages included (apt-get inside the chroot), then the agent runs with
    the root's own Python: ``awsac-agent --help`` through the installed wrapper.

    The caller's TMPDIR names a directory that exists only on the host: the chroot commands run
    with a clean environment, so apt-get and ca-certificates never see it."""
    root = debian_root
    chroot = need_tool("chroot")
    clean = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}

    def in_root(*cmd: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [chroot, str(root), *cmd], env=env or clean, capture_output=True, text=True, timeout=120
        )

    assert not (root / "usr/lib/python3/dist-packages/boto3").exists()  # provision.sh installs it
    # ca-certificates' postinst makes temporary files: unpacked again (not configured), it is
    # configured by provision.sh's apt-get below, as on a root that never had it
    unpack = in_root("sh", "-c", "dpkg --unpack /var/cache/apt/archives/ca-certificates_*.deb")
    assert unpack.returncode == 0, unpack.stdout + unpack.stderr
    _plant(root)
    host_tmp = tmp_path / "host-only-tmp"
    host_tmp.mkdir()
    assert not (root / str(host_tmp).lstrip("/")).exists()
    r = _provision(root, env=dict(os.environ, TMPDIR=str(host_tmp)))
    status = in_root("dpkg-query", "-W", "-f=${Status}", "ca-certificates")
    assert status.stdout == "install ok installed", status.stdout + status.stderr
    assert "installing python3 and python3-boto3 with apt-get" in r.stdout
    _assert_installed_and_clean(root)

    agent_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}
    agent_env["PYTHONPATH"] = "/opt/awsac"  # as the wrapper sets it
    out = in_root("/usr/local/bin/awsac-agent", "--help", env=agent_env)
    assert out.returncode == 0, out.stderr
    assert "autorun" in out.stdout
    probe = in_root(
        "python3",
        "-c",
        "import sys, boto3, awsac_agent; print(sys.executable, awsac_agent.__file__)",
        env=agent_env,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == ["/usr/bin/python3", "/opt/awsac/awsac_agent/__init__.py"]

    # The unit as installed, verified with ExecStart pointing at the wrapper inside this root.
    analyze = shutil.which("systemd-analyze")
    if analyze:
        unit = tmp_path / "awsac-autorun.service"
        installed = (root / "etc/systemd/system/awsac-autorun.service").read_text()
        unit.write_text(
            installed.replace("/usr/local/bin/awsac-agent", str(root / "usr/local/bin/awsac-agent"))
        )
        v = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
        assert v.returncode == 0 and (v.stdout + v.stderr).strip() == "", v.stdout + v.stderr
