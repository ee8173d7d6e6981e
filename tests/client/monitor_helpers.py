"""A session the tests drive by hand on the local cloud: instances launched with the session's tag
(no agent), status records written as an agent writes them, a clock the test moves."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from awsac_agent.sessionid import SESSION_TAG, session_tag_filter
from awsac_agent.status import JobRecord, domain_name, item_name, updated_iso

from awsac_tui.records import SessionRecord
from awsac_tui.spec import CloudProfile


@dataclass
class Clock:
    """The client's clock in a test: ``clock()`` is now, ``advance(s)`` moves it."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def session_record(
    sid: str, bucket: str, n_jobs: int, cpi: int, created: datetime, store: str = "simpledb"
) -> SessionRecord:
    return SessionRecord(
        session_id=sid,
        state="running",
        bucket=bucket,
        n_jobs=n_jobs,
        n_instances=-(-n_jobs // cpi),
        cores_per_instance=cpi,
        status_store=store,
        jobs=(f"-;work.sh;{n_jobs}",),
        cloud=CloudProfile(local=True),
        created_at=created.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


def launch(boto3_client: Callable[[str], Any], info: Any, sid: str, n: int) -> list[str]:
    """``n`` instances (launch indexes 0..n-1) tagged with the session, instances and volumes,
    as session.start launches them; waits until they run. Their boot step finds no user-data."""
    ec2 = boto3_client("ec2")
    tags = [{"Key": SESSION_TAG, "Value": sid}]
    resp = ec2.run_instances(
        ImageId=info.image_id,
        InstanceType="c5.large",
        MinCount=n,
        MaxCount=n,
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": tags},
            {"ResourceType": "volume", "Tags": tags},
        ],
    )
    ids = [i["InstanceId"] for i in sorted(resp["Instances"], key=lambda i: i["AmiLaunchIndex"])]
    wait_for(lambda: running(ec2, ids), "instances running")
    return ids


def running(ec2: Any, ids: list[str]) -> bool:
    got = ec2.describe_instances(InstanceIds=ids)["Reservations"]
    return all(i["State"]["Name"] == "running" for r in got for i in r["Instances"])


def gone(ec2: Any, ids: list[str]) -> bool:
    got = ec2.describe_instances(InstanceIds=ids)["Reservations"]
    return all(i["State"]["Name"] == "terminated" for r in got for i in r["Instances"])


def job_volume(ec2: Any, sid: str, iid: str, device: str = "/dev/sdh") -> str:
    """A tagged volume attached to ``iid``, as the agent makes one for a snapshot."""
    vol = ec2.create_volume(
        Size=1,
        AvailabilityZone="us-east-1a",
        TagSpecifications=[
            {"ResourceType": "volume", "Tags": [{"Key": SESSION_TAG, "Value": sid}]}
        ],
    )["VolumeId"]
    ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device=device)
    return vol


def put_record(sdb: Any, sid: str, rec: JobRecord, updated: datetime | None) -> None:
    """Write ``rec`` whole with ``updated`` exactly (an agent's clock, skewed if need be)."""
    attrs = rec.to_attributes()
    if updated is not None:
        attrs["updated"] = updated_iso(updated)
    sdb.put_attributes(
        DomainName=domain_name(sid),
        ItemName=item_name(rec.jobnr),
        Attributes=[{"Name": k, "Value": v, "Replace": True} for k, v in attrs.items()],
    )


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def terminate_all(boto3_client: Callable[[str], Any], sid: str) -> None:
    ec2 = boto3_client("ec2")
    ids = [
        i["InstanceId"]
        for r in ec2.describe_instances(Filters=[session_tag_filter(sid)])["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] != "terminated"
    ]
    if ids:
        ec2.terminate_instances(InstanceIds=ids)
        # The local runner, like EC2, passes through shutting-down before terminated; under load
        # that takes a moment, and the leak audit counts a shutting-down instance as live.
        wait_for(lambda: gone(ec2, ids), "instances terminated")
    for v in ec2.describe_volumes(Filters=[session_tag_filter(sid)])["Volumes"]:
        if v["Attachments"]:
            ec2.detach_volume(VolumeId=v["VolumeId"], Force=True)
        ec2.delete_volume(VolumeId=v["VolumeId"])
