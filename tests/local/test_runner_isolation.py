"""An instance gets a real instance's environment, and nothing it starts outlives it (issue 19).

Each test runs its own local cloud, started from an environment that holds (fake) secrets.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from polling import wait_for

from awsac_tui.local import service
from awsac_tui.local.common import instance_environment, passes_to_instance, pid_alive

SECRETS = {
    "GITHUB_TOKEN": "ghp_isolationTEST0123456789abcdefABCDEF",
    "MY_DB_PASSWORD": "hunter2-isolation-test",
    "OPENAI_API_KEY": "sk-isolation-test-0123456789",
    "AWS_SECRET_ACCESS_KEY": "isolation-test-aws-secret",
    "AWS_SESSION_TOKEN": "isolation-test-session-token",
    "HTTPS_PROXY": "http://user:proxy-password-isolation@proxy.example:3128",
    "AWSAC_API_TOKEN": "awsac-prefixed-isolation-secret",
}

# A boot command that leaves daemons behind the way jobs do: a double fork into a new session
# (setsid), nohup, and one started with an empty environment (env -i) in its own session.
DAEMON_BOOT = r"""
pids="$PWD/daemon.pids"
setsid sh -c 'echo $$ >> "$0"; exec sleep 300' "$pids" &
nohup sh -c 'echo $$ >> "$0"; exec sleep 300' "$pids" >/dev/null 2>&1 &
env -i /bin/sh -c 'setsid sh -c "echo \$\$ >> $0; exec sleep 300" &' "$pids"
"$AWSAC_PYTHON" - "$pids" <<'EOF'
import os, sys, time
if os.fork():
    sys.exit(0)
os.setsid()
if os.fork():
    os._exit(0)
with open(sys.argv[1], "a") as fh:
    fh.write(f"{os.getpid()}\n")
time.sleep(300)
EOF
echo booted-with-daemons
exec sleep 300
"""


@pytest.fixture
def own_cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A local cloud of this test, started from an environment holding the fake secrets."""
    monkeypatch.setenv("AWSAC_STATE_DIR", str(tmp_path / "state"))
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    info = service.ensure_up(boot_delay=0, boot_command=["/bin/sh", "-c", DAEMON_BOOT])
    try:
        yield info
    finally:
        service.down()


def _ec2(info: Any) -> Any:
    import boto3

    return boto3.session.Session().client(
        "ec2",
        endpoint_url=info.endpoint,
        region_name=info.region,
        aws_access_key_id="x",
        aws_secret_access_key="y",
    )


def _launch(info: Any) -> tuple[str, Path]:
    ec2 = _ec2(info)
    instance_id = ec2.run_instances(ImageId=info.image_id, MinCount=1, MaxCount=1)["Instances"][0][
        "InstanceId"
    ]
    return instance_id, service.local_dir() / "instances" / instance_id


def _daemons(instance_dir: Path) -> list[int]:
    pids_file = instance_dir / "root" / "daemon.pids"

    def four() -> list[int] | None:
        if not pids_file.is_file():
            return None
        pids = [int(p) for p in pids_file.read_text().split()]
        return pids if len(pids) == 4 else None

    return wait_for(four, what="the boot command's four daemons")


def test_environment_is_an_allow_list_not_the_users() -> None:
    base = {**SECRETS, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "AWSAC_POLL_SECONDS": "0.5"}
    base.update({"AWS_PROFILE": "prod", "SSH_AUTH_SOCK": "/tmp/agent.sock", "HOME": "/home/u"})
    env = instance_environment(
        base,
        endpoint="http://127.0.0.1:1",
        region="us-east-1",
        imds_endpoint="http://127.0.0.1:2/",
        instance_dir=Path("/x/instances/i-1"),
    )
    for name in SECRETS:
        assert passes_to_instance(name) is False
        assert env.get(name) != SECRETS[name]
    assert "AWS_PROFILE" not in env and "SSH_AUTH_SOCK" not in env
    assert env["PATH"] == "/usr/bin:/bin" and env["LANG"] == "C.UTF-8"
    assert env["AWSAC_POLL_SECONDS"] == "0.5"  # awsac's own knobs pass
    assert env["HOME"] == "/x/instances/i-1/root/root"
    assert env["TMPDIR"] == "/x/instances/i-1/root/tmp"
    assert "AWS_ACCESS_KEY_ID" not in env


@pytest.mark.slow
def test_daemons_die_with_the_instance_and_no_secret_reaches_it(own_cloud: Any) -> None:
    ec2 = _ec2(own_cloud)
    service.configure(
        own_cloud, boot_command=["/bin/sh", "-c", "env; echo env-printed; exec sleep 300"]
    )
    printer, _ = _launch(own_cloud)
    service.configure(own_cloud, boot_command=["/bin/sh", "-c", DAEMON_BOOT])
    instance_id, instance_dir = _launch(own_cloud)

    def console(iid: str) -> str:
        return ec2.get_console_output(InstanceId=iid).get("Output") or ""  # botocore decodes it

    text = wait_for(lambda: "env-printed" in console(printer) and console(printer), what="env")
    for name, value in SECRETS.items():
        assert value not in text, f"{name} reached the instance"
    names = {line.split("=", 1)[0] for line in text.splitlines() if "=" in line}
    assert "AWS_ENDPOINT_URL" in names and "AWSAC_WORK_DIR" in names
    assert not names & set(SECRETS)

    daemons = _daemons(instance_dir)
    assert all(pid_alive(p) for p in daemons)
    init = json.loads((instance_dir / "instance.json").read_text())["pid"]
    ec2.terminate_instances(InstanceIds=[instance_id, printer])
    for pid in [init, *daemons]:
        wait_for(lambda pid=pid: not pid_alive(pid), timeout=10, what=f"process {pid} ended")


@pytest.mark.slow
def test_host_crash_powers_off_and_down_reports_strays_truthfully(own_cloud: Any) -> None:
    instance_id, instance_dir = _launch(own_cloud)
    daemons = _daemons(instance_dir)
    # the service dies (kill -9): every instance's init powers its instance off
    os.kill(own_cloud.pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(own_cloud.pid), what="service killed")
    for pid in daemons:
        wait_for(lambda pid=pid: not pid_alive(pid), timeout=10, what=f"daemon {pid} ended")
    assert service.down().strays_ended == ()

    # an escapee: a process of the instance outside any init (as if its init was killed by hand)
    stray = _start_stray(instance_dir)
    report = service.down()
    assert stray in report.strays_ended and report.strays_left == ()
    assert not pid_alive(stray)


def _start_stray(instance_dir: Path) -> int:
    """A process with an empty environment whose cwd is in the instance (as an env -i job's)."""
    import subprocess

    (instance_dir / "root").mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        ["env", "-i", sys.executable, "-c", "import time; time.sleep(300)"],
        cwd=instance_dir / "root",
        start_new_session=True,
    )
    wait_for(lambda: pid_alive(proc.pid), what="stray started")
    # reap it from here once it is killed, so it does not linger as our zombie
    import threading

    threading.Thread(target=proc.wait, daemon=True).start()
    return proc.pid
