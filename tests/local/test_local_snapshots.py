"""Snapshots and the local device provider: content appears at the mount point after AttachVolume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from polling import wait_for

from awsac_tui.local import service


def _record(info: Any, instance_id: str) -> dict[str, Any]:
    path = Path(info.state_dir) / "local" / "instances" / instance_id / "instance.json"
    return wait_for(lambda: path.is_file() and json.loads(path.read_text()), what=str(path))


@pytest.fixture
def sleeper_cloud(local_cloud: Any) -> Any:
    """Instances that just sleep (the device test needs a running instance, not an agent)."""
    before = service._side(local_cloud.endpoint, "health")
    service.configure(local_cloud, boot_command=["sleep", "120"])
    yield local_cloud
    service.configure(local_cloud, boot_command=before["boot_command"])


def test_make_snapshot_creates_a_real_snapshot_with_content(
    aws_env: dict[str, str], boto3_client: Any, tmp_path: Path
) -> None:
    source = tmp_path / "data"
    (source / "sub").mkdir(parents=True)
    (source / "input.txt").write_text("hello jobs\n")
    (source / "sub" / "more.txt").write_text("more\n")
    snapshot_id = service.make_snapshot(source, "test data")
    ec2 = boto3_client("ec2")
    [snapshot] = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
    assert snapshot["Description"] == "test data"
    assert snapshot["State"] == "completed"
    content = service.local_dir() / "snapshots" / snapshot_id
    assert (content / "input.txt").read_text() == "hello jobs\n"
    assert (content / "sub" / "more.txt").read_text() == "more\n"
    snapshots = {s["snapshot_id"] for s in service.status().snapshots if s["has_content"]}
    assert snapshot_id in snapshots


def test_make_snapshot_of_a_missing_directory_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(service.LocalCloudError, match="not a directory"):
        service.make_snapshot(tmp_path / "missing")


def test_snapshot_content_appears_at_mount_point_and_disappears_on_unmount(
    sleeper_cloud: Any, aws_env: dict[str, str], boto3_client: Any, tmp_path: Path
) -> None:
    from awsac_agent.devices import LocalDeviceProvider
    from awsac_agent.imds import Imds

    source = tmp_path / "data"
    source.mkdir()
    (source / "genome.fa").write_text(">seq\nACGT\n")
    snapshot_id = service.make_snapshot(source, "genome")
    ec2 = boto3_client("ec2")
    volume_id = ec2.create_volume(AvailabilityZone="us-east-1a", SnapshotId=snapshot_id)["VolumeId"]
    run = ec2.run_instances(ImageId=sleeper_cloud.image_id, MinCount=2, MaxCount=2)
    instance_id, other_id = (i["InstanceId"] for i in run["Instances"])
    provider = LocalDeviceProvider(
        Imds(endpoint=_record(sleeper_cloud, instance_id)["imds_endpoint"])
    )
    other = LocalDeviceProvider(Imds(endpoint=_record(sleeper_cloud, other_id)["imds_endpoint"]))
    with pytest.raises(Exception, match="attached"):
        provider.find_device(volume_id, "/dev/sdf", timeout=0.2)

    ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device="/dev/sdf")
    device = provider.find_device(volume_id, "/dev/sdf", timeout=10)
    mountpoint = tmp_path / "root" / "mnt" / "data"
    provider.mount(device, mountpoint)
    assert (mountpoint / "genome.fa").read_text() == ">seq\nACGT\n"
    # the other instance does not see a volume attached elsewhere
    with pytest.raises(Exception, match="attached"):
        other.find_device(volume_id, "/dev/sdf", timeout=0.2)
    # attaching an attached volume to a second instance is refused, as on EC2
    with pytest.raises(ClientError) as excinfo:
        ec2.attach_volume(VolumeId=volume_id, InstanceId=other_id, Device="/dev/sdg")
    assert excinfo.value.response["Error"]["Code"] == "VolumeInUse"

    provider.unmount(mountpoint)
    assert not mountpoint.exists()
    ec2.detach_volume(VolumeId=volume_id)  # without InstanceId, as EC2 allows
    with pytest.raises(Exception, match="attached"):
        provider.find_device(volume_id, "/dev/sdf", timeout=0.2)
    ec2.terminate_instances(InstanceIds=[instance_id, other_id])
