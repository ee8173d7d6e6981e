"""EC2 as its API reference documents it, where the local cloud once differed (issue 17, 14)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import botocore.exceptions
import pytest
from conformance_helpers import QueryClient, error_of

from awsac_tui.local import service
from awsac_tui.local.common import AVAILABILITY_ZONE, IMAGE_ID


@pytest.fixture
def sleeping(local_cloud: Any) -> Iterator[Any]:
    """Instances boot `sleep` (no agent), and every instance launched is terminated afterwards."""
    before = service._side(local_cloud.endpoint, "health")
    service.configure(local_cloud, boot_command=["sleep", "60"])
    try:
        yield local_cloud
    finally:
        service.configure(local_cloud, boot_command=before["boot_command"])


def _terminate_all(ec2: Any) -> None:
    ids = [
        i["InstanceId"]
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] in ("pending", "running")
    ]
    if ids:
        ec2.terminate_instances(InstanceIds=ids)


@pytest.fixture
def limits(local_cloud: Any, ec2: Any, sleeping: Any) -> Iterator[Any]:
    """Set account limits for one test; lifted (and its instances terminated) afterwards."""
    _terminate_all(ec2)
    yield lambda **settings: service.configure_ec2(local_cloud, **settings)
    _terminate_all(ec2)
    service.configure_ec2(local_cloud, vcpu_quota=None, instance_limit=None, capacity={})


def _code(call: Any) -> tuple[str, int]:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call()
    return error_of(caught.value)


# ---- images and instances ------------------------------------------------------------------------


def test_run_instances_with_an_unknown_image_is_invalid_ami_id_not_found(ec2: Any) -> None:
    code, status = _code(
        lambda: ec2.run_instances(ImageId="ami-0123456789abcdef0", MinCount=1, MaxCount=1)
    )
    assert (code, status) == ("InvalidAMIID.NotFound", 400)
    assert not [
        i
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
        if i["ImageId"] == "ami-0123456789abcdef0"
    ]


def test_describe_instances_filters_by_client_token_and_reports_http_tokens_as_launched(
    ec2: Any, sleeping: Any
) -> None:
    launched = ec2.run_instances(
        ImageId=IMAGE_ID,
        MinCount=1,
        MaxCount=1,
        ClientToken="conformance-token-1",
        MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled"},
    )["Instances"][0]
    try:
        found = ec2.describe_instances(
            Filters=[{"Name": "client-token", "Values": ["conformance-token-1"]}]
        )["Reservations"]
        assert [i["InstanceId"] for r in found for i in r["Instances"]] == [launched["InstanceId"]]
        assert found[0]["Instances"][0]["MetadataOptions"]["HttpTokens"] == "required"
        none = ec2.describe_instances(Filters=[{"Name": "client-token", "Values": ["other"]}])
        assert none["Reservations"] == []
    finally:
        ec2.terminate_instances(InstanceIds=[launched["InstanceId"]])


def test_run_instances_over_the_vcpu_quota_is_vcpu_limit_exceeded_and_launches_nothing(
    ec2: Any, limits: Any
) -> None:
    limits(vcpu_quota=4)
    assert _code(
        lambda: ec2.run_instances(ImageId=IMAGE_ID, MinCount=3, MaxCount=3, InstanceType="c5.large")
    ) == ("VcpuLimitExceeded", 400)
    assert (
        ec2.describe_instances(
            Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}]
        )["Reservations"]
        == []
    )


def test_run_instances_launches_up_to_max_count_when_min_count_fits(ec2: Any, limits: Any) -> None:
    limits(vcpu_quota=6)  # three c5.large (2 vCPUs each)
    got = ec2.run_instances(ImageId=IMAGE_ID, MinCount=2, MaxCount=5, InstanceType="c5.large")
    assert len(got["Instances"]) == 3
    assert sorted(i["AmiLaunchIndex"] for i in got["Instances"]) == [0, 1, 2]
    assert _code(
        lambda: ec2.run_instances(ImageId=IMAGE_ID, MinCount=1, MaxCount=1, InstanceType="c5.large")
    ) == ("VcpuLimitExceeded", 400)


def test_run_instances_beyond_a_types_capacity_is_insufficient_instance_capacity(
    ec2: Any, limits: Any
) -> None:
    limits(capacity={"c5.large": 1})
    assert _code(
        lambda: ec2.run_instances(ImageId=IMAGE_ID, MinCount=2, MaxCount=2, InstanceType="c5.large")
    ) == ("InsufficientInstanceCapacity", 400)
    other = ec2.run_instances(ImageId=IMAGE_ID, MinCount=2, MaxCount=2, InstanceType="t3.micro")
    assert len(other["Instances"]) == 2


def test_run_instances_beyond_the_instance_limit_is_instance_limit_exceeded(
    ec2: Any, limits: Any
) -> None:
    limits(instance_limit=1)
    ec2.run_instances(ImageId=IMAGE_ID, MinCount=1, MaxCount=1, InstanceType="t3.micro")
    assert _code(
        lambda: ec2.run_instances(ImageId=IMAGE_ID, MinCount=1, MaxCount=1, InstanceType="t3.micro")
    ) == ("InstanceLimitExceeded", 400)


# ---- volumes and snapshots -----------------------------------------------------------------------


def test_a_volume_of_size_zero_is_refused(ec2: Any) -> None:
    assert _code(lambda: ec2.create_volume(AvailabilityZone=AVAILABILITY_ZONE, Size=0)) == (
        "InvalidParameterValue",
        400,
    )


def test_detaching_a_volume_that_is_not_attached_is_incorrect_state(ec2: Any) -> None:
    volume = ec2.create_volume(AvailabilityZone=AVAILABILITY_ZONE, Size=1)["VolumeId"]
    try:
        assert _code(lambda: ec2.detach_volume(VolumeId=volume)) == ("IncorrectState", 400)
    finally:
        ec2.delete_volume(VolumeId=volume)


def test_an_unknown_volume_is_named_plainly_in_invalid_volume_not_found(ec2: Any) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ec2.describe_volumes(VolumeIds=["vol-0123456789abcdef0"])
    assert error_of(caught.value) == ("InvalidVolume.NotFound", 400)
    message = caught.value.response["Error"]["Message"]
    assert message == "The volume 'vol-0123456789abcdef0' does not exist."


def test_a_new_volume_is_creating_and_a_new_snapshot_pending_for_a_moment(
    ec2: Any, local_cloud: Any
) -> None:
    service.configure_ec2(local_cloud, ebs_delay=0.6)
    try:
        volume = ec2.create_volume(AvailabilityZone=AVAILABILITY_ZONE, Size=1)["VolumeId"]
        assert ec2.describe_volumes(VolumeIds=[volume])["Volumes"][0]["State"] == "creating"
        ec2.get_waiter("volume_available").wait(
            VolumeIds=[volume], WaiterConfig={"Delay": 0.1, "MaxAttempts": 100}
        )
        snapshot = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
        first = ec2.describe_snapshots(SnapshotIds=[snapshot])["Snapshots"][0]
        assert (first["State"], first["Progress"]) == ("pending", "0%")
        ec2.get_waiter("snapshot_completed").wait(
            SnapshotIds=[snapshot], WaiterConfig={"Delay": 0.1, "MaxAttempts": 100}
        )
        done = ec2.describe_snapshots(SnapshotIds=[snapshot])["Snapshots"][0]
        assert (done["State"], done["Progress"]) == ("completed", "100%")
        ec2.delete_snapshot(SnapshotId=snapshot)
        ec2.delete_volume(VolumeId=volume)
    finally:
        service.configure_ec2(local_cloud, ebs_delay=0)


def test_local_snapshot_waits_for_the_volume_and_the_snapshot(
    ec2: Any, local_cloud: Any, tmp_path: Any
) -> None:
    service.configure_ec2(local_cloud, ebs_delay=0.3)
    try:
        (tmp_path / "data.txt").write_text("x")
        started = time.monotonic()
        snapshot = service.make_snapshot(tmp_path, "conformance: waits")
        assert time.monotonic() - started >= 0.6  # volume creating, then snapshot pending
        got = ec2.describe_snapshots(SnapshotIds=[snapshot])["Snapshots"][0]
        assert got["State"] == "completed"
    finally:
        service.configure_ec2(local_cloud, ebs_delay=0)


def test_ec2_query_requests_signed_with_sigv4_by_hand_are_answered(raw_ec2: QueryClient) -> None:
    answer = raw_ec2("DescribeVolumes", Filter__1__Name="status", Filter__1__Value__1="error")
    assert answer.status == 200 and answer.root.tag == "DescribeVolumesResponse"
    bad = raw_ec2("DescribeVolumes", VolumeId__1="vol-0123456789abcdef0")
    assert bad.status == 400 and bad.error_code == "InvalidVolume.NotFound"


def test_a_plain_user_data_script_is_not_run_on_the_local_image_and_the_console_says_so(
    ec2: Any,
) -> None:
    from polling import wait_for

    launched = ec2.run_instances(
        ImageId=IMAGE_ID, MinCount=1, MaxCount=1, UserData="#!/bin/sh\necho hello > /tmp/x\n"
    )["Instances"][0]
    instance = launched["InstanceId"]
    try:

        def console() -> str:
            # botocore decodes the base64 console for us
            text = ec2.get_console_output(InstanceId=instance).get("Output") or ""
            return text if "nothing to do" in text else ""

        text = wait_for(console, timeout=60, what="the agent's word on the user-data script")
        assert "awsac sessions only, not user-data scripts" in text
    finally:
        ec2.terminate_instances(InstanceIds=[instance])


# ---- filters (answered by tag and id lookups before moto's matching, issue 20) -------------------


def test_filters_by_tag_id_and_state_answer_what_the_resources_say(ec2: Any, sleeping: Any) -> None:
    """Each filtered describe holds exactly the resources whose own tags, ids and states pass
    every filter (tag values compared whole: "s1" does not match "s10"; * is a wildcard)."""
    mine = f"f{time.time_ns()}"
    other = mine + "0"
    ids = []
    for session, n in ((mine, 3), (other, 2)):
        tags = [{"Key": "awsac:session", "Value": session}, {"Key": "n", "Value": str(n)}]
        ids += [
            i["InstanceId"]
            for i in ec2.run_instances(
                ImageId=IMAGE_ID,
                MinCount=n,
                MaxCount=n,
                TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
            )["Instances"]
        ]
    vols = []
    for session in (mine, mine, other):
        vols.append(
            ec2.create_volume(
                Size=1,
                AvailabilityZone=AVAILABILITY_ZONE,
                TagSpecifications=[
                    {"ResourceType": "volume", "Tags": [{"Key": "awsac:session", "Value": session}]}
                ],
            )["VolumeId"]
        )
    try:
        ec2.terminate_instances(InstanceIds=[ids[0]])
        instances = {
            i["InstanceId"]: i
            for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]
            for i in r["Instances"]
        }

        def tag(resource: dict[str, Any], key: str) -> str | None:
            return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}.get(key)

        def described(filters: list[dict[str, Any]]) -> set[str]:
            got = ec2.describe_instances(Filters=filters)["Reservations"]
            return {i["InstanceId"] for r in got for i in r["Instances"]} & set(ids)

        session = {"Name": "tag:awsac:session", "Values": [mine]}
        assert described([session]) == {
            k for k, i in instances.items() if tag(i, "awsac:session") == mine
        }
        assert described([{"Name": "tag:awsac:session", "Values": [mine + "*"]}]) == set(ids)
        assert described([session, {"Name": "instance-id", "Values": ids[:2] + ids[3:4]}]) == set(
            ids[:2]
        )
        states = {"Name": "instance-state-name", "Values": ["shutting-down", "terminated"]}
        assert described([session, states]) == {ids[0]}
        assert described([{"Name": "tag:n", "Values": ["2", "3"]}, states]) == {ids[0]}
        assert described([{"Name": "tag:awsac:session", "Values": [mine + "x"]}]) == set()

        def volumes(filters: list[dict[str, Any]]) -> set[str]:
            return {v["VolumeId"] for v in ec2.describe_volumes(Filters=filters)["Volumes"]} & set(
                vols
            )

        assert volumes([session]) == set(vols[:2])
        assert volumes([session, {"Name": "volume-id", "Values": vols[1:]}]) == {vols[1]}
        time.sleep(0.5)  # past `creating`
        assert volumes([session, {"Name": "status", "Values": ["available"]}]) == set(vols[:2])
        assert volumes([session, {"Name": "status", "Values": ["in-use"]}]) == set()
        assert volumes([{"Name": "status", "Values": ["avail*"]}]) == set(vols)
    finally:
        ec2.terminate_instances(InstanceIds=ids)
        for vid in vols:
            ec2.delete_volume(VolumeId=vid)
