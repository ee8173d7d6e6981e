"""jobscope: when the worker asks systemd for a scope per job, and what it asks.

systemd itself is exercised on the VMs (tests/image/test_vm_sessions.py); here ``systemd-run`` and
``systemctl`` are stand-ins on PATH that write down their arguments (``systemd-run`` then execs the
command after ``--``, as the real one does with ``--scope``)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from awsac_agent.jobscope import ENV_SWITCH, JobScopes, unit_name
from polling import wait_for

SYSTEMD_RUN = """#!/bin/sh
echo "systemd-run $*" >> "{log}"
{fail}
while [ "$1" != "--" ]; do shift; done
shift
exec "$@"
"""
SYSTEMCTL = """#!/bin/sh
echo "systemctl $*" >> "{log}"
"""


def _tools(tmp_path: Path, *, fail: str = "") -> tuple[dict[str, str], Path, Path]:
    """A PATH with the stand-ins first, their call log, and a runtime dir standing for systemd's."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "calls.log"
    for name, text in (("systemd-run", SYSTEMD_RUN), ("systemctl", SYSTEMCTL)):
        path = bindir / name
        path.write_text(text.format(log=log, fail=fail))
        path.chmod(0o755)
    runtime = tmp_path / "run-systemd-system"
    runtime.mkdir()
    return {"PATH": f"{bindir}:{os.defpath}"}, log, runtime


def _calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_unit_names_are_what_systemd_accepts() -> None:
    assert (
        unit_name("261203_0808--evgen--3fa2", 7, 2)
        == "awsac-job-261203_0808--evgen--3fa2-7-2.scope"
    )
    assert unit_name("a b/c@d", 1, 1) == "awsac-job-a_b_c_d-1-1.scope"


@pytest.mark.parametrize(
    ("environ", "has_runtime", "root", "why"),
    [
        ({ENV_SWITCH: "off"}, True, True, f"{ENV_SWITCH}=off"),
        ({}, False, True, "systemd is not this machine's init"),
        ({}, True, False, "the worker does not run as root"),
    ],
)
def test_no_scopes_where_systemd_cannot_give_them(
    tmp_path: Path, environ: dict[str, str], has_runtime: bool, root: bool, why: str
) -> None:
    env, log, runtime = _tools(tmp_path)
    said: list[str] = []
    scopes = JobScopes(
        said.append,
        {**env, **environ},
        runtime_dir=str(runtime if has_runtime else tmp_path / "absent"),
        root=root,
    )
    assert not scopes.enabled and scopes.unavailable == why
    assert said == [f"  jobs run in their own process group only: {why}"]
    assert scopes.command("u.scope", ["/bin/sh", "job.sh"]) == ["/bin/sh", "job.sh"]
    scopes.signal("u.scope", signal.SIGTERM)
    scopes.stop("u.scope")
    assert _calls(log) == []  # neither tool was asked anything, not even the probe


def test_no_scopes_without_the_tools(tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir()
    said: list[str] = []
    empty = tmp_path / "empty"
    empty.mkdir()
    scopes = JobScopes(said.append, {"PATH": str(empty)}, runtime_dir=str(runtime), root=True)
    assert scopes.unavailable == "systemd-run is not on PATH"


def test_a_failing_probe_says_what_systemd_run_said(tmp_path: Path) -> None:
    fail = 'echo "Failed to connect to bus: No such file or directory" >&2; exit 1'
    env, log, runtime = _tools(tmp_path, fail=fail)
    said: list[str] = []
    scopes = JobScopes(said.append, env, runtime_dir=str(runtime), root=True)
    assert scopes.unavailable == (
        "systemd-run --scope failed (Failed to connect to bus: No such file or directory)"
    )
    assert said == [f"  jobs run in their own process group only: {scopes.unavailable}"]
    assert scopes.command("u.scope", ["true"]) == ["true"]


def test_a_job_starts_in_its_scope_is_signalled_in_it_and_its_scope_is_killed_after(
    tmp_path: Path,
) -> None:
    env, log, runtime = _tools(tmp_path)
    said: list[str] = []
    scopes = JobScopes(said.append, env, runtime_dir=str(runtime), root=True)
    assert scopes.enabled, scopes.unavailable
    assert said == [
        "  each job runs in its own systemd scope (awsac-job-<session>-<job>-<attempt>)"
    ]
    assert _calls(log) == ["systemd-run --scope --quiet --collect -- /bin/true"]  # the probe

    unit = unit_name("261203_0808--evgen--3fa2", 3, 1)
    argv = scopes.command(unit, ["/bin/sh", "-c", 'echo "pid $$"; exec sleep 30'])
    assert argv[0] == str(tmp_path / "bin" / "systemd-run")
    assert argv[1:6] == ["--scope", "--quiet", "--collect", f"--unit={unit}", "--"]
    out = tmp_path / "job.out"
    with out.open("wb") as fh:
        proc = subprocess.Popen(argv, stdout=fh, start_new_session=True)
    try:
        # systemd-run execs the job: the worker's child is the job's own shell
        wait_for(lambda: out.read_text().strip() or None, 10, "the job's first line")
        assert out.read_text().strip() == f"pid {proc.pid}"
        scopes.signal(unit, signal.SIGTERM)  # returns at once; systemctl answers in the background
        wait_for(
            lambda: f"systemctl kill --signal=SIGTERM {unit}" in _calls(log) or None,
            10,
            "systemctl kill",
        )
    finally:
        proc.kill()
        proc.wait()
    started = time.monotonic()
    scopes.stop(unit)
    assert time.monotonic() - started < 10
    assert _calls(log)[-2:] == [f"systemctl kill --signal=SIGKILL {unit}", f"systemctl stop {unit}"]
