"""The service's life cycle and the CLI: up, idempotent up, status, env, reset, shell, down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from polling import wait_for

from awsac_tui.local import cli, service
from awsac_tui.local.common import pid_alive

ROOT = Path(__file__).resolve().parents[2]


def _listening_inodes() -> dict[str, str]:
    """inode -> local address of every listening TCP socket (from /proc/net/tcp and tcp6)."""
    inodes: dict[str, str] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                inodes[fields[9]] = fields[1]
    return inodes


def _socket_inodes(pid: int) -> set[str]:
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(target[len("socket:[") : -1])
    return found


def _is_loopback(address: str) -> bool:
    host = address.split(":")[0]
    if len(host) == 8:  # IPv4, little-endian hex
        return host == "0100007F"
    return host == "00000000000000000000000001000000"  # ::1


def _cli(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "awsac_tui.local", *args],
        env=env,
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def own_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A state dir of its own, so this test starts and stops its own service."""
    monkeypatch.setenv("AWSAC_STATE_DIR", str(tmp_path / "state"))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "agent")])
    yield env
    service.down()


@pytest.mark.slow
def test_life_cycle_up_status_reset_down(own_state: dict[str, str]) -> None:
    assert service.running_info() is None
    info = service.ensure_up(boot_delay=0, boot_command=["sleep", "60"])
    assert info.endpoint.startswith("http://127.0.0.1:")
    assert info.state_dir == own_state["AWSAC_STATE_DIR"]
    again = service.ensure_up()
    assert again == info  # a second up finds the running one
    recorded = json.loads((service.local_dir() / "service.json").read_text())
    assert recorded["pid"] == info.pid and recorded["image_id"] == info.image_id

    import boto3

    ec2 = boto3.session.Session().client(
        "ec2",
        endpoint_url=info.endpoint,
        region_name=info.region,
        aws_access_key_id="x",
        aws_secret_access_key="y",
    )
    [image] = ec2.describe_images(ImageIds=[info.image_id])["Images"]
    assert image["Name"] == "awsac-local"
    run = ec2.run_instances(ImageId=info.image_id, MinCount=2, MaxCount=2)
    ids = [i["InstanceId"] for i in run["Instances"]]
    records = [service.local_dir() / "instances" / i / "instance.json" for i in ids]
    wait_for(lambda: all(r.is_file() for r in records), what="instances booted")
    instance_pids = [json.loads(r.read_text())["pid"] for r in records]
    assert all(pid_alive(p) for p in instance_pids)
    boto3.session.Session().client(
        "sdb",
        endpoint_url=info.endpoint,
        region_name=info.region,
        aws_access_key_id="x",
        aws_secret_access_key="y",
    ).create_domain(DomainName="awsac-life")

    current = service.status()
    assert {i["instance_id"] for i in current.instances} == set(ids)
    assert current.domains == ("awsac-life",)

    # nothing listens on anything but loopback: the server and every instance's metadata endpoint
    listening = _listening_inodes()
    for pid in [info.pid, *instance_pids]:
        for inode in _socket_inodes(pid) & set(listening):
            assert _is_loopback(listening[inode]), f"pid {pid} listens on {listening[inode]}"
    server_listens = _socket_inodes(info.pid) & set(listening)
    assert len(server_listens) >= 3  # emulator + two metadata endpoints

    after = service.reset()
    assert after.pid == info.pid
    assert after.image_id == info.image_id == "ami-0a75ac10ca1000000"
    for pid in instance_pids:
        wait_for(lambda pid=pid: not pid_alive(pid), what=f"instance process {pid} ended at reset")
    current = service.status()
    assert current.instances == () and current.domains == () and current.snapshots == ()
    [image] = ec2.describe_images(ImageIds=[after.image_id])["Images"]
    assert image["Name"] == "awsac-local"

    run = ec2.run_instances(ImageId=after.image_id, MinCount=1, MaxCount=1)
    record = service.local_dir() / "instances" / run["Instances"][0]["InstanceId"] / "instance.json"
    wait_for(record.is_file, what="instance booted")
    last_pid = json.loads(record.read_text())["pid"]
    report = service.down()
    assert report.was_running is True and report.strays_left == ()
    for pid in (info.pid, last_pid):
        assert not pid_alive(pid), f"process {pid} left after down()"
    assert service.running_info() is None
    assert not (service.local_dir() / "service.json").exists()
    assert service.down().was_running is False


@pytest.mark.slow
def test_cli_up_env_status_shell_down(own_state: dict[str, str], tmp_path: Path) -> None:
    up = _cli("up", "--boot-delay", "0", env=own_state)
    assert up.returncode == 0, up.stderr
    assert "local cloud up at http://127.0.0.1:" in up.stdout and " s\n" in up.stdout
    again = _cli("up", env=own_state)
    assert "already running" in again.stdout

    status = _cli("status", "--json", env=own_state)
    data = json.loads(status.stdout)
    for key in ("endpoint", "pid", "region", "account_id", "image_id"):
        assert data[key]
    assert data["running"] is True

    env_lines = _cli("env", env=own_state).stdout
    exports = dict(
        line[len("export ") :].split("=", 1)
        for line in env_lines.splitlines()
        if line.startswith("export ")
    )
    assert exports["AWS_ENDPOINT_URL"] == data["endpoint"]
    assert {"AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(exports)

    # the AWS CLI way: a plain boto3 script with only those variables reaches the local cloud
    script_env = {k: v for k, v in own_state.items() if not k.startswith("AWS_")}
    script_env.update(exports)
    script = "import boto3; print(len(boto3.client('ec2').describe_instances()['Reservations']))"
    out = subprocess.run(
        [sys.executable, "-c", script], env=script_env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0"

    source = tmp_path / "data"
    source.mkdir()
    (source / "a.txt").write_text("a\n")
    snap = _cli("snapshot", str(source), "--description", "cli", "--json", env=own_state)
    snapshot_id = json.loads(snap.stdout)["snapshot_id"]
    assert snapshot_id.startswith("snap-")
    missing = _cli("snapshot", str(tmp_path / "nope"), env=own_state)
    assert missing.returncode != 0
    assert "not a directory" in missing.stderr and "Traceback" not in missing.stderr

    import boto3

    info = service.running_info()
    assert info is not None
    service.configure(info, boot_command=["sleep", "60"])
    ec2 = boto3.session.Session().client(
        "ec2",
        endpoint_url=info.endpoint,
        region_name=info.region,
        aws_access_key_id="x",
        aws_secret_access_key="y",
    )
    instance_id = ec2.run_instances(ImageId=info.image_id, MinCount=1, MaxCount=1)["Instances"][0][
        "InstanceId"
    ]
    record = service.local_dir() / "instances" / instance_id / "instance.json"
    wait_for(record.is_file, what="instance booted")
    shell_env = dict(own_state, SHELL="/bin/sh")
    shell = _cli(
        "shell",
        instance_id,
        env=shell_env,
        stdin='pwd; echo "work=$AWSAC_WORK_DIR"; echo "key=${AWS_ACCESS_KEY_ID:-none}"; exit 3\n',
    )
    assert shell.returncode == 3
    assert "LOCAL shell" in shell.stderr
    assert shell.stdout.splitlines()[0].endswith(f"/instances/{instance_id}/root")
    assert f"work={record.parent}/root/mnt/awsac" in shell.stdout
    assert "key=none" in shell.stdout
    unknown = _cli("shell", "i-doesnotexist", env=shell_env)
    assert unknown.returncode != 0 and "has not booted" in unknown.stderr

    down = _cli("down", env=own_state)
    assert down.returncode == 0 and "stopped" in down.stdout
    assert not pid_alive(data["pid"])
    assert _cli("status", env=own_state).returncode == 1


def test_env_without_a_running_cloud_is_a_user_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWSAC_STATE_DIR", str(tmp_path))
    assert cli.main(["env"]) == 2
    assert "awsac local up" in capsys.readouterr().err
    with pytest.raises(service.LocalCloudError, match="awsac local up"):
        service.status()


def test_state_dir_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWSAC_STATE_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert service.state_dir() == tmp_path / "xdg" / "awsac"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert service.state_dir() == tmp_path / "home" / ".local" / "state" / "awsac"
    monkeypatch.setenv("AWSAC_STATE_DIR", str(tmp_path / "explicit"))
    assert service.local_dir() == tmp_path / "explicit" / "local"


@pytest.mark.slow
def test_a_killed_service_powers_its_instances_off(own_state: dict[str, str]) -> None:
    import signal

    import boto3

    info = service.ensure_up(boot_delay=0, boot_command=["sleep", "60"])
    ec2 = boto3.session.Session().client(
        "ec2",
        endpoint_url=info.endpoint,
        region_name=info.region,
        aws_access_key_id="x",
        aws_secret_access_key="y",
    )
    instance_id = ec2.run_instances(ImageId=info.image_id, MinCount=1, MaxCount=1)["Instances"][0][
        "InstanceId"
    ]
    record = service.local_dir() / "instances" / instance_id / "instance.json"
    wait_for(record.is_file, what="instance booted")
    orphan = json.loads(record.read_text())["pid"]
    assert pid_alive(orphan)
    os.kill(info.pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(info.pid), what="service killed")
    # a host crash: each instance's init sees its lifeline close and ends everything
    wait_for(lambda: not pid_alive(orphan), timeout=5, what="instance powered off")
    assert service.running_info() is None

    fresh = service.ensure_up()
    assert fresh.pid != info.pid
    assert not pid_alive(orphan)
    # it comes back as EC2 shows an instance whose host failed: terminated, with the reason
    ec2 = boto3.session.Session().client(
        "ec2",
        endpoint_url=fresh.endpoint,
        region_name=fresh.region,
        aws_access_key_id="x",
        aws_secret_access_key="y",
    )
    [instance] = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"]
    assert instance["State"]["Name"] == "terminated"
    assert instance["StateReason"]["Code"] == "Server.InternalError"
