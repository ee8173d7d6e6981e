"""The local cloud keeps its state across down/up and a kill -9; only reset forgets (issue 16).

Each test runs its own local cloud in its own state directory, since it kills or stops it.
"""

from __future__ import annotations

import functools
import json
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from polling import wait_for

from awsac_tui.local import service
from awsac_tui.local.common import pid_alive

BUCKET = "awsac-persist-tests"
DOMAIN = "awsac-persist-domain"
ODD_KEY = "sid/ünï cödé+plus %20.txt"


@pytest.fixture
def own_cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWSAC_STATE_DIR", str(tmp_path / "state"))
    info = service.ensure_up(boot_delay=0, boot_command=["sleep", "300"])
    try:
        yield info
    finally:
        service.down()


def clients(info: Any) -> Callable[[str], Any]:
    """boto3 clients of the local cloud ``info``, one per service (a new one costs 30 ms of
    CPU, and the EC2 model 0.3 s when the process has not parsed it yet)."""
    return functools.cache(lambda name: service.boto3_client(info, name))


def _kill(info: Any) -> None:
    os.kill(info.pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(info.pid), what="service killed")


def _blobs() -> list[str]:
    return sorted(p.name for p in (service.local_dir() / "state" / "s3" / "blobs").iterdir())


def _instance(ec2: Any, instance_id: str) -> dict[str, Any]:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def _fill(info: Any, tmp_path: Path) -> dict[str, Any]:
    """Make one of everything the local cloud must keep; what was made."""
    make = clients(info)
    s3, sdb, ec2 = make("s3"), make("sdb"), make("ec2")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="sid/first.txt", Body=b"one")
    s3.put_object(Bucket=BUCKET, Key="sid/first.txt", Body=b"one, overwritten")
    s3.put_object(Bucket=BUCKET, Key=ODD_KEY, Body=b"a name with spaces, + and accents")
    s3.put_object(Bucket=BUCKET, Key="sid/gone.txt", Body=b"deleted before the crash")
    s3.delete_object(Bucket=BUCKET, Key="sid/gone.txt")
    big = os.urandom(6 * 2**20)
    s3.put_object(Bucket=BUCKET, Key="sid/results_job_1.tar.bz2", Body=big)
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="sid/unfinished")["UploadId"]
    s3.upload_part(
        Bucket=BUCKET, Key="sid/unfinished", UploadId=upload, PartNumber=1, Body=b"p" * 2**20
    )
    sdb.create_domain(DomainName=DOMAIN)
    sdb.batch_put_attributes(
        DomainName=DOMAIN,
        Items=[
            {"Name": f"job{n}", "Attributes": [{"Name": "status", "Value": "running"}]}
            for n in (1, 2, 3)
        ],
    )
    content = tmp_path / "release"
    content.mkdir()
    (content / "setup.sh").write_text("echo release\n")
    snapshot = service.make_snapshot(content, "persist test")
    volume = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1, SnapshotId=snapshot)
    ec2.create_key_pair(KeyName="awsac-persist")
    ended, running = (
        i["InstanceId"]
        for i in ec2.run_instances(ImageId=info.image_id, MinCount=2, MaxCount=2)["Instances"]
    )
    ec2.terminate_instances(InstanceIds=[ended])
    # shutting-down lasts until the instance's processes are gone; a crash before that would
    # (rightly) count it among the instances the restore had to terminate
    wait_for(lambda: _instance(ec2, ended)["State"]["Name"] == "terminated", what="terminated")
    wait_for(lambda: _instance(ec2, running)["State"]["Name"] == "running", what="running")
    image = ec2.create_image(InstanceId=running, Name="awsac-persist-image")["ImageId"]
    return {
        "image": image,
        "big": big,
        "upload": upload,
        "snapshot": snapshot,
        "volume": volume["VolumeId"],
        "ended": ended,
        "running": running,
    }


def _assert_kept(info: Any, made: dict[str, Any], reason: str) -> None:
    make = clients(info)
    s3, sdb, ec2 = make("s3"), make("sdb"), make("ec2")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
    assert keys == sorted(["sid/first.txt", "sid/results_job_1.tar.bz2", ODD_KEY])
    assert s3.get_object(Bucket=BUCKET, Key=ODD_KEY)["Body"].read().startswith(b"a name")
    assert s3.get_object(Bucket=BUCKET, Key="sid/first.txt")["Body"].read() == b"one, overwritten"
    body = s3.get_object(Bucket=BUCKET, Key="sid/results_job_1.tar.bz2")["Body"].read()
    assert body == made["big"]
    uploads = s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    assert [u["UploadId"] for u in uploads] == [made["upload"]]
    items = sdb.select(SelectExpression=f"select * from `{DOMAIN}`")["Items"]
    assert sorted(i["Name"] for i in items) == ["job1", "job2", "job3"]
    [snap] = ec2.describe_snapshots(SnapshotIds=[made["snapshot"]])["Snapshots"]
    assert snap["Description"] == "persist test"
    assert (service.local_dir() / "snapshots" / made["snapshot"] / "setup.sh").is_file()
    [vol] = ec2.describe_volumes(VolumeIds=[made["volume"]])["Volumes"]
    assert vol["SnapshotId"] == made["snapshot"]
    assert [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]] == ["awsac-persist"]
    [image] = ec2.describe_images(ImageIds=[made["image"]])["Images"]
    assert image["Name"] == "awsac-persist-image"
    assert ec2.describe_images(ImageIds=[info.image_id])["Images"][0]["Name"] == "awsac-local"
    ended = _instance(ec2, made["ended"])
    assert ended["State"]["Name"] == "terminated"
    assert ended["StateReason"]["Code"] == "Client.UserInitiatedShutdown"
    was_running = _instance(ec2, made["running"])
    assert was_running["State"]["Name"] == "terminated"
    assert was_running["StateReason"]["Code"] == "Server.InternalError"
    assert reason in was_running["StateReason"]["Message"]
    # no object content lost or left over: one blob per object and per part of an unfinished upload
    stored = 0
    for bucket in s3.list_buckets()["Buckets"]:
        name = bucket["Name"]
        stored += s3.list_objects_v2(Bucket=name).get("KeyCount", 0)
        for up in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
            parts = s3.list_parts(Bucket=name, Key=up["Key"], UploadId=up["UploadId"])
            stored += len(parts.get("Parts", []))
    assert len(_blobs()) == stored


@pytest.mark.slow
def test_down_then_up_keeps_everything_and_reset_forgets(own_cloud: Any, tmp_path: Path) -> None:
    made = _fill(own_cloud, tmp_path)
    assert service.down().was_running
    info = service.ensure_up()
    assert info.state["restored"] is True
    assert info.state["terminated_at_restore"] == []  # down terminated it already
    _assert_kept(info, made, "awsac local down")
    # the restored EC2 still launches (from moto's own images too, which are not saved)
    ec2 = clients(info)("ec2")
    default_image = ec2.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]
    for image in (info.image_id, default_image):
        [new] = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"]
        ec2.terminate_instances(InstanceIds=[new["InstanceId"]])

    after = service.reset()
    assert after is not None and after.state["restored"] is False
    assert service.status().domains == () and service.status().snapshots == ()
    assert clients(after)("s3").list_buckets()["Buckets"] == []
    assert _blobs() == []


def test_unreadable_state_refuses_to_start_until_reset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWSAC_STATE_DIR", str(tmp_path / "state"))
    manifest = service.local_dir() / "state" / "manifest.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"format": 999}))
    try:
        with pytest.raises(service.LocalCloudError) as refused:
            service.ensure_up(boot_delay=0)
        assert "format 999" in str(refused.value) and "awsac local reset" in str(refused.value)
        assert json.loads(manifest.read_text()) == {"format": 999}  # nothing was changed
        assert service.reset() is None  # offline: forgets the saved state
        fresh = service.ensure_up(boot_delay=0)
        assert fresh.state["restored"] is False
        assert "a new, empty local cloud" in service.describe_state(fresh)
        assert clients(fresh)("s3").list_buckets()["Buckets"] == []
    finally:
        service.down()


@pytest.fixture
def agent_cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A local cloud of this test that boots the real agent."""
    monkeypatch.setenv("AWSAC_STATE_DIR", str(tmp_path / "state"))
    info = service.ensure_up(boot_delay=0)
    try:
        yield info
    finally:
        service.down()


@pytest.mark.slow
@pytest.mark.e2e
def test_kill_9_while_a_session_runs_then_check_and_cleanup_work(
    agent_cloud: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from faults.helpers import EVENTGEN, LONG_JOB, all_done, audit, make_session, poll, start

    from awsac_tui import cli as cli_mod

    def cli(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        rc = cli_mod.main(list(argv))
        out, err = capsys.readouterr()
        return rc, out, err

    snapshot = service.make_snapshot(EVENTGEN / "release", "persist e2e release")
    job_dir = make_session(
        tmp_path,
        agent_cloud,
        snapshot,
        jobs="@SNAP@;a.sh;2\n",
        scripts={"a.sh": LONG_JOB},
        store="simpledb",
    )
    sid = start(cli, job_dir)
    poll(cli, sid, lambda s: [j["status"] for j in s["jobs"]] == ["running"] * 2, 120)
    before = clients(agent_cloud)

    def objects(make: Callable[[str], Any]) -> set[str]:
        listing = make("s3").list_objects_v2(Bucket="awsac-fault-tests", Prefix=f"{sid}/")
        return {o["Key"] for o in listing.get("Contents", [])}

    def items(make: Callable[[str], Any]) -> dict[str, dict[str, str]]:
        found = make("sdb").select(SelectExpression=f"select * from `{sid}`", ConsistentRead=True)
        return {i["Name"]: {a["Name"]: a["Value"] for a in i["Attributes"]} for i in found["Items"]}

    objects_before, items_before = objects(before), items(before)
    assert f"{sid}/sessionarchive.tar.bz2" in objects_before
    assert sorted(items_before) == ["job1", "job2"]
    assert all(v["status"] == "running" for v in items_before.values())

    made = _fill(agent_cloud, tmp_path)  # and one of everything else the local cloud keeps

    _kill(agent_cloud)
    info = service.ensure_up()
    assert info.state["restored"] is True
    # the session's instance and _fill's running one were up when the host went down
    assert len(info.state["terminated_at_restore"]) == 2
    assert made["running"] in info.state["terminated_at_restore"]
    line = service.describe_state(info)
    assert "restored from" in line and made["running"] in line
    assert "2 bucket(s)" in line and "2 domain(s) with 5 item(s)" in line
    _assert_kept(info, made, "host went down")
    after = clients(info)
    assert objects(after) >= objects_before
    kept = items(after)
    assert {n: v["status"] for n, v in kept.items()} == {"job1": "running", "job2": "running"}
    assert after("ec2").describe_snapshots(SnapshotIds=[snapshot])["Snapshots"]
    # the client sees the jobs lost with their instance, then cleans up; nothing is left
    snap = poll(cli, sid, all_done, 60)
    assert [j["status"] for j in snap["jobs"]] == ["lost", "lost"], snap["jobs"]
    audit(cli, after, sid, cleanup=True)


def test_ec2_is_saved_without_motos_own_images_and_the_whole_form_still_loads() -> None:
    from moto.ec2.models import ec2_backends

    from awsac_tui.local.persistence import dumps, dumps_ec2, loads_ec2

    account = "000000000017"  # a moto account of this test alone, in this process
    backends = ec2_backends[account]
    backend = backends["us-east-1"]
    default_ami = next(iter(backend.amis))
    backend.create_key_pair("kept", key_type="rsa", tags={})
    [volume] = [backend.create_volume(size=1, zone_name="us-east-1a")]
    backend.create_tags([volume.id], {"awsac:session": "s1"})
    whole = dumps(backend)
    small = dumps_ec2(backend, account)
    assert len(small) * 10 < len(whole)  # moto's ~1,300 images and snapshots are not saved

    del backends["us-east-1"]
    restored = loads_ec2(small, lambda: backends["us-east-1"])
    assert restored is backends["us-east-1"] and restored is not backend
    assert set(restored.key_pairs) == {"kept"} and volume.id in restored.volumes
    assert restored.volumes[volume.id].ec2_backend is restored
    assert default_ami in restored.amis and len(restored.snapshots) == len(backend.snapshots)
    assert restored.tags[volume.id] == {"awsac:session": "s1"}
    assert loads_ec2(whole, lambda: None).key_pairs.keys() == {"kept"}  # the first version's form
