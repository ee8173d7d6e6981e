"""Sessions on QEMU virtual machines of the image (``awsac local up --vm``): a real kernel, systemd
starting awsac-autorun.service (baked image), real cloud-init running the stock bootstrap (stock
image), and each job's ATLASDir on a hot-plugged NVMe disk found by its serial and mounted read-only;
beside them a guest that powers itself off becomes ``stopped`` (InstanceInitiatedShutdownBehavior).

Slow: the images come from the machine's cache (debootstrap once, shared with test_provision.py),
and every VM boots under TCG when KVM does not work. The two sessions run side by side.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from awsac_agent.jobscope import unit_name
from awsac_agent.sessionid import session_tag_filter
from cloud_audit import leftovers_in

from .helpers import ROOT, need_tool

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.vm]

EXAMPLE = ROOT / "examples" / "eventgen"
SESSION_TIMEOUT_S = float(os.environ.get("AWSAC_TEST_VM_TIMEOUT", "1500"))
# Each job prints where its ATLASDir comes from (the real findmnt of the guest).
FINDMNT = 'echo "ATLASDir mount: $(findmnt -n -o SOURCE,FSTYPE,OPTIONS --target "$ATLASDir")"'
MOUNT_LINE = re.compile(r"ATLASDir mount: (/dev/nvme\d+n1) +ext4 +(\S+)")
# Each job prints its cgroup; an odd job leaves a daemon that left its process group (setsid), and
# the even job beside it on the same guest waits (2 min at most) until that daemon is gone: the
# worker kills the odd job's systemd scope when the job's shell has exited.
CGROUP = 'echo "cgroup: $(cat /proc/self/cgroup)"'
DAEMON = "/tmp/awsac-test-daemon-"
START_DAEMON = f"""if [ $((AWSAC_JOB_NUMBER % 2)) = 1 ]; then
  setsid sleep 600 &
  echo "$!" > "{DAEMON}$AWSAC_JOB_NUMBER"
  echo "started daemon $! (setsid)"
fi
"""
WATCH_DAEMON = f"""if [ $((AWSAC_JOB_NUMBER % 2)) = 0 ]; then
  f="{DAEMON}$((AWSAC_JOB_NUMBER - 1))"; i=0
  while [ ! -s "$f" ] && [ $i -lt 240 ]; do sleep 0.5; i=$((i + 1)); done
  pid=$(cat "$f" 2>/dev/null); i=0
  while [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ $i -lt 240 ]; do sleep 0.5; i=$((i + 1)); done
  if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then state=gone; else state=alive; fi
  echo "daemon ${{pid:-?}} of job $((AWSAC_JOB_NUMBER - 1)): $state"
fi
"""
DAEMON_LINE = re.compile(r"daemon (\d+|\?) of job (\d+): (\w+)")
NVME_MOUNTED = re.compile(r"\[\s*\d+\.\d+\] EXT4-fs \(nvme\d+n1\): mounted filesystem")
# The agent's knobs (handed to every guest on its kernel command line): poll quickly.
AGENT_KNOBS = {
    "AWSAC_POLL_SECONDS": "2",
    "AWSAC_WAITER_DELAY_SECONDS": "1",
    "AWSAC_RETRY_BASE_SECONDS": "1",
}


@pytest.fixture(scope="module")
def vm_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A local cloud of its own with the VM runner; the images are built first if needed."""
    for tool in ("qemu-system-x86_64", "qemu-img", "socat", "debootstrap", "mkfs.ext4"):
        need_tool(tool)
    if os.geteuid() != 0:
        pytest.skip("building the VM images needs root (debootstrap, chroot); CI runs as root")
    from awsac_tui.local import service

    saved = {k: os.environ.get(k) for k in ("AWSAC_STATE_DIR", *AGENT_KNOBS)}
    state = tmp_path_factory.mktemp("awsac-vm-state")
    os.environ["AWSAC_STATE_DIR"] = str(state)
    os.environ.update(AGENT_KNOBS)
    started = time.monotonic()
    try:
        info = service.ensure_up(boot_delay=0, vm=True, say=print)
        print(f"VM images and local cloud ready in {time.monotonic() - started:.0f} s")
        yield info
    finally:
        os.environ["AWSAC_STATE_DIR"] = str(state)
        service.down()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    assert _qemus(state) == [], "QEMU processes left after down()"


def _qemus(state: Path) -> list[int]:
    """QEMU processes of this state dir's instances."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if cmd.startswith(b"qemu-system") and str(state).encode() in cmd:
            found.append(int(entry.name))
    return found


@pytest.fixture
def vm_cli(
    vm_cloud: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str, str]]:
    """``awsac ARGS`` in-process against the VM local cloud."""
    from awsac_tui import cli as cli_mod
    from awsac_tui.local.service import client_env

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in client_env(vm_cloud).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWSAC_STATE_DIR", vm_cloud.state_dir)

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        rc = cli_mod.main(list(argv))
        out, err = capsys.readouterr()
        return rc, out, err

    return run


def _job_dir(dest: Path, image_id: str, snapshot: str, *, stock: bool) -> Path:
    """The eventgen example on one VM (a job of 30 and a job of 1000 events: launch index 0 runs
    both on its 2 cores), its job scripts printing their ATLASDir mount; the stock variant is one
    job on the stock image with the S3-only status store. Three guests at once, not more: under
    TCG on 2 cores each one more costs minutes (launch indexes across instances are the process
    runner's tests)."""
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("release"))
    for script in ("gen_30.sh", "gen_1000.sh"):
        path = dest / script
        text = path.read_text()
        anchor = '. "${ATLASDir}/14.2.10/setup.sh"\n'
        assert anchor in text
        text = text.replace(anchor, anchor + FINDMNT + "\n" + CGROUP + "\n" + START_DAEMON)
        end = 'exit "${rc}"\n'
        assert text.endswith(end)
        path.write_text(text[: -len(end)] + WATCH_DAEMON + end)
    toml = dest / "session.toml"
    text = toml.read_text().replace("ami-00000000", image_id)
    text = "\n".join(line for line in text.splitlines() if not line.startswith("n_jobs"))
    if stock:
        text = text.replace('status_store = "simpledb"', 'status_store = "s3"')
        text = text.replace("[tags]", 'image_mode = "stock"\n\n[tags]', 1)
        (dest / "jobs.cfg").write_text(f"{snapshot};gen_30.sh;1\n")
    else:
        (dest / "jobs.cfg").write_text(f"{snapshot};gen_30.sh;1\n{snapshot};gen_1000.sh;1\n")
    toml.write_text(text + "\n")
    return dest


def _check(cli: Callable[..., tuple[int, str, str]], sid: str) -> dict[str, Any]:
    rc, out, err = cli("check", sid, "--json")
    assert rc in (0, 1), err
    return json.loads(out)


def _done(snap: dict[str, Any]) -> bool:
    return all(
        j["status"] in ("finished", "failed", "killed", "lost") for j in snap["jobs"]
    ) and all(i["state"] == "terminated" for i in snap["instances"])


def _job_logs(results: Path) -> dict[int, str]:
    logs = {}
    for bundle in sorted(results.glob("stdouterr_job_*.tar.bz2")):
        number = int(bundle.name.split("_")[2].split(".")[0])
        with tarfile.open(bundle) as tar:
            member = next(m for m in tar.getmembers() if m.isfile())
            data = tar.extractfile(member)
            assert data is not None
            logs[number] = io.TextIOWrapper(data, encoding="utf-8", errors="replace").read()
    return logs


@pytest.mark.timeout(SESSION_TIMEOUT_S + 900)
def test_baked_and_stock_images_run_sessions_on_vms(
    vm_cloud: Any,
    vm_cli: Callable[..., tuple[int, str, str]],
    tmp_path: Path,
    boto3_vm: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from awsac_tui.local import service
    from awsac_tui.local.common import IMAGE_ID, STOCK_IMAGE_ID

    def say(text: str) -> None:  # to the terminal (vm_cli captures the rest)
        with capsys.disabled():
            print(f"\n{text}", flush=True)

    started = time.monotonic()
    snapshot = service.make_snapshot(EXAMPLE / "release", "tests: eventgen release (VM)")
    sessions = {}
    for kind, image_id in (("baked", IMAGE_ID), ("stock", STOCK_IMAGE_ID)):
        job = _job_dir(tmp_path / kind, image_id, snapshot, stock=kind == "stock")
        rc, out, err = vm_cli("start", str(job / "session.toml"), "--yes", "--json")
        assert rc == 0, out + err
        sessions[kind] = json.loads(out)["session_id"]
    # and a guest that powers itself off: EC2's default InstanceInitiatedShutdownBehavior is stop
    ec2 = boto3_vm("ec2")
    halting = ec2.run_instances(
        ImageId=STOCK_IMAGE_ID,
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        UserData="#!/bin/sh\necho 'awsac test: powering off'\npoweroff\n",
    )["Instances"][0]["InstanceId"]

    def halted() -> dict[str, Any] | None:
        found = ec2.describe_instances(InstanceIds=[halting])["Reservations"][0]["Instances"][0]
        return found if found["State"]["Name"] == "stopped" else None

    deadline = time.monotonic() + SESSION_TIMEOUT_S
    final: dict[str, dict[str, Any]] = {}
    stopped: dict[str, Any] | None = None
    while len(final) < len(sessions) or stopped is None:
        if stopped is None and (stopped := halted()) is not None:
            say(f"powered-off guest stopped after {time.monotonic() - started:.0f} s")
        for kind, sid in sessions.items():
            if kind not in final:
                snap = _check(vm_cli, sid)
                if _done(snap):
                    final[kind] = snap
                    say(f"{kind} session done after {time.monotonic() - started:.0f} s")
        assert time.monotonic() < deadline, {k: _check(vm_cli, s) for k, s in sessions.items()}
        time.sleep(3)

    assert stopped["StateReason"]["Code"] == "Client.InstanceInitiatedShutdown", stopped
    console = ec2.get_console_output(InstanceId=halting).get("Output", "")
    assert "awsac test: powering off" in console
    ec2.terminate_instances(InstanceIds=[halting])
    for kind, sid in sessions.items():
        snap = final[kind]
        expected = 2 if kind == "baked" else 1
        assert [j["status"] for j in snap["jobs"]] == ["finished"] * expected, (kind, snap["jobs"])
        assert len(snap["instances"]) == 1
        consoles = [
            ec2.get_console_output(InstanceId=i["instance_id"]).get("Output", "")
            for i in snap["instances"]
        ]
        for console in consoles:  # the last 64 KB of each serial console
            # the guest kernel mounted the volume's NVMe disk
            assert NVME_MOUNTED.search(console), console[-3000:]
            if kind == "baked":  # systemd ran the image's awsac-autorun.service
                assert re.search(r"awsac-autorun\[\d+\]: .*AWSACtools: autorun", console)
            else:  # cloud-init (Ec2 datasource) ran the bootstrap user-data, which started the
                # boot step from the session's worker as a systemd-run unit
                assert re.search(r"cloud-init\[\d+\]: awsac-bootstrap: fetching s3://", console)
                assert re.search(r"python3\[\d+\]: .*AWSACtools: autorun", console)

        out_dir = tmp_path / f"results-{kind}"
        out_dir.mkdir()
        rc, out, err = vm_cli("results", sid, "-o", str(out_dir))
        assert rc == 0, out + err
        logs = _job_logs(out_dir / f"session-{sid}")
        assert sorted(logs) == list(range(1, expected + 1))
        for number, text in logs.items():
            found = MOUNT_LINE.search(text)
            assert found, f"{kind} job {number}: no NVMe mount line in its log:\n{text[-2000:]}"
            assert "ro" in found.group(2).split(","), found.group(0)
            assert "ATLAS JOB END" in text and "bundle successful" in text
            # the job ran in its own systemd scope (cgroup v2: one line, 0::/<path>)
            scope = re.escape(unit_name(sid, number, 1))
            assert re.search(rf"cgroup: 0::/(\S+/)?{scope}\n", text), text[-2000:]
            if number % 2 == 0:  # the odd job's setsid daemon ended with that job
                daemon = DAEMON_LINE.search(text)
                assert daemon and daemon.groups()[1:] == (str(number - 1), "gone"), text[-2000:]
        for number in logs:  # the job's own results.tar.bz2 (tar cj inside the guest)
            with tarfile.open(out_dir / f"session-{sid}" / f"results_job_{number}.tar.bz2") as tar:
                assert "EVGEN_007410_00001.txt" in tar.getnames()

        volumes = ec2.describe_volumes(Filters=[session_tag_filter(sid)])["Volumes"]
        assert all(v["State"] == "deleted" for v in volumes), volumes
        # each volume was hot-plugged and unplugged again (QMP device_add, device_del answered by
        # the guest), as the runner logs it
        runner_log = (Path(vm_cloud.state_dir) / "local" / "service.log").read_text()
        made = set(re.findall(r"instructed EC2 to create volume (vol-\w+)", "".join(consoles)))
        assert len(made) == len(snap["instances"]), made  # one volume per instance
        for vol in made:
            assert f"attached {vol} to" in runner_log and f"detached {vol} from" in runner_log
        rc, out, err = vm_cli("cleanup", sid, "--yes")
        assert rc == 0, out + err
        left = leftovers_in(boto3_vm, sid, "atlassessions")
        assert (left.instances, left.volumes, left.objects) == ([], [], []), left

    assert _qemus(Path(vm_cloud.state_dir)) == [], "a terminated instance's QEMU still runs"
    took = time.monotonic() - started
    say(f"VM sessions (baked: 2 jobs on 1 VM; stock: 1 job; a powered-off guest) took {took:.0f} s")


@pytest.fixture
def boto3_vm(vm_cloud: Any) -> Callable[[str], Any]:
    import boto3

    from awsac_tui.local.service import client_env

    env = client_env(vm_cloud)

    def make(name: str) -> Any:
        return boto3.session.Session().client(
            name,
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )

    return make
