"""The image recipe passes its tools: packer validate, shellcheck on every shell script,
systemd-analyze verify on the boot unit."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .helpers import AMI, ROOT, need_tool

TEMPLATE = AMI / "awsac.pkr.hcl"
UNIT = AMI / "awsac-autorun.service"
SHELLS = ("sh", "bash", "dash", "ksh")


def _packer(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    packer = need_tool("packer")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["CHECKPOINT_DISABLE"] = "1"  # no version check over the network
    cmd = [packer, *args]
    # Prove the check is offline: run it without a network namespace when we may.
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"]).returncode == 0:
        cmd = ["unshare", "-n", *cmd]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_packer_syntax_only() -> None:
    r = _packer("validate", "-syntax-only", str(TEMPLATE.relative_to(ROOT)))
    assert r.returncode == 0, r.stdout + r.stderr


def test_packer_full_validate_offline_without_credentials() -> None:
    """Full validate also prepares the amazon-ebs builder (block devices, ami_name, ssh settings)
    and the provisioners (their source files must exist); it needs no AWS credentials here."""
    r = _packer("validate", str(TEMPLATE.relative_to(ROOT)))
    assert r.returncode == 0, r.stdout + r.stderr


def test_packer_validate_catches_a_broken_template(tmp_path: Path) -> None:
    """The validate step is not a rubber stamp: a missing provisioner source fails it."""
    broken = tmp_path / "ami"
    shutil.copytree(AMI, broken, ignore=shutil.ignore_patterns("iam", "__pycache__"))
    (broken / "awsac-autorun.service").unlink()
    r = _packer("validate", "awsac.pkr.hcl", cwd=broken)
    assert r.returncode != 0
    assert "awsac-autorun.service" in r.stdout + r.stderr


def test_packer_template_has_the_issue_variables() -> None:
    text = TEMPLATE.read_text()
    for var in ("region", "source_ami_name", "instance_type", "image_name_prefix"):
        assert f'variable "{var}"' in text
    assert 'source "amazon-ebs"' in text
    assert "formatdate(" in text and "timestamp()" in text  # image name with a timestamp
    assert "provision.sh" in text and "agent/awsac_agent" in text


def _is_shell_script(path: Path) -> bool:
    if path.suffix == ".sh":
        return True
    try:
        first = path.open("rb").readline().decode("utf-8", "replace")
    except OSError:
        return False
    if not first.startswith("#!"):
        return False
    words = first[2:].replace("/usr/bin/env", " ").split()
    return bool(words) and Path(words[0]).name in SHELLS


def shell_scripts() -> list[Path]:
    """Every shell script of the work tree (tracked or new, not ignored), by name or shebang."""
    r = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if r.returncode == 0:
        files = [ROOT / line for line in r.stdout.splitlines() if line]
    else:  # not a git checkout (e.g. an sdist): walk the tree
        files = [p for p in ROOT.rglob("*") if ".git" not in p.parts]
    scripts = {p for p in files if p.is_file() and _is_shell_script(p)}
    scripts.add(AMI / "provision.sh")
    return sorted(scripts)


def test_the_repo_has_the_expected_shell_scripts() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in shell_scripts()}
    assert "ami/provision.sh" in names
    assert "agent/awsac_agent/session_files/awsac_all_instances_autorun.sh" in names


@pytest.mark.parametrize("script", shell_scripts(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_shellcheck(script: Path) -> None:
    shellcheck = need_tool("shellcheck")
    r = subprocess.run(
        [shellcheck, "--external-sources", str(script)],
        cwd=script.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, f"shellcheck {script.relative_to(ROOT)}:\n{r.stdout}{r.stderr}"


def _verify_unit(unit: Path) -> str:
    analyze = need_tool("systemd-analyze")
    r = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    out = (r.stdout + r.stderr).strip()
    assert r.returncode == 0, out
    return out


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    """``systemd-analyze verify`` exits 0 on mere warnings (an unknown key), so we also require
    silence. ExecStart must name an executable: on a machine without the image's wrapper we verify
    a copy whose ExecStart names a stand-in executable at a temporary path (same arguments); the
    slow provisioning test verifies the unit against the wrapper provision.sh really installs."""
    wrapper = Path("/usr/local/bin/awsac-agent")
    unit = UNIT
    if not os.access(wrapper, os.X_OK):
        stand_in = tmp_path / "bin" / "awsac-agent"
        stand_in.parent.mkdir()
        stand_in.write_text("#!/bin/sh\nexit 0\n")
        stand_in.chmod(0o755)
        unit = tmp_path / UNIT.name
        unit.write_text(UNIT.read_text().replace(str(wrapper), str(stand_in)))
    assert _verify_unit(unit) == ""


def test_systemd_analyze_verify_is_strict(tmp_path: Path) -> None:
    bad = tmp_path / UNIT.name
    bad.write_text(
        UNIT.read_text()
        .replace("Restart=no", "Restrat=no")
        .replace("/usr/local/bin/awsac-agent autorun", "/bin/true autorun")
    )
    assert "Restrat" in _verify_unit(bad)


def test_unit_runs_the_boot_step_once_after_the_network_to_the_console() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(UNIT)
    assert "network-online.target" in unit["Unit"]["Wants"].split()
    assert "network-online.target" in unit["Unit"]["After"].split()
    svc = unit["Service"]
    assert svc["ExecStart"] == "/usr/local/bin/awsac-agent autorun"
    assert svc["Type"] == "simple" and svc["Restart"] == "no"
    assert svc["StandardOutput"] == "journal+console"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
