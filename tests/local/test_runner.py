"""The instance runner: pending -> running, per-instance metadata, console output, process ends."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from polling import wait_for

from awsac_tui.local import service
from awsac_tui.local.common import pid_alive


def _state(ec2: Any, instance_id: str) -> str:
    reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservations[0]["Instances"][0]["State"]["Name"]


def _prog_report(ec2: Any, instance_id: str) -> dict[str, Any] | None:
    """What instance_prog printed about itself, read through GetConsoleOutput."""
    output = ec2.get_console_output(InstanceId=instance_id).get("Output")
    if not output:
        return None
    for line in output.splitlines():
        if line.startswith("instance-prog "):
            return json.loads(line[len("instance-prog ") :])
    return None


def _run(ec2: Any, info: Any, count: int, user_data: str | None) -> list[str]:
    kwargs: dict[str, Any] = {"ImageId": info.image_id, "MinCount": count, "MaxCount": count}
    if user_data is not None:
        kwargs["UserData"] = user_data
    response = ec2.run_instances(**kwargs)
    return [i["InstanceId"] for i in response["Instances"]]


def _imds(endpoint: str, path: str, token: str | None, method: str = "GET") -> tuple[int, bytes]:
    request = urllib.request.Request(endpoint.rstrip("/") + path, method=method)
    if token is not None:
        request.add_header("X-aws-ec2-metadata-token", token)
    if method == "PUT":
        request.add_header("X-aws-ec2-metadata-token-ttl-seconds", "60")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _record(info: Any, instance_id: str) -> dict[str, Any]:
    path = Path(info.state_dir) / "local" / "instances" / instance_id / "instance.json"
    return wait_for(lambda: path.is_file() and json.loads(path.read_text()), what=str(path))


@pytest.mark.slow
def test_reservation_of_three_goes_pending_to_running_with_own_metadata(
    prog_cloud: Any, boto3_client: Any
) -> None:
    ec2 = boto3_client("ec2")
    delay = 1.5
    service.configure(prog_cloud, boot_delay=delay)
    response = ec2.run_instances(
        ImageId=prog_cloud.image_id, MinCount=3, MaxCount=3, UserData="sleep"
    )
    ids = [i["InstanceId"] for i in response["Instances"]]
    assert [i["State"]["Name"] for i in response["Instances"]] == ["pending"] * 3
    launched = {i["InstanceId"]: i["LaunchTime"].timestamp() for i in response["Instances"]}

    for instance_id in ids:
        wait_for(lambda i=instance_id: _state(ec2, i) == "running", what=f"{instance_id} running")
    reports = {i: wait_for(lambda i=i: _prog_report(ec2, i), what=f"console of {i}") for i in ids}
    for index, instance_id in enumerate(ids):
        report = reports[instance_id]
        assert report["instance_id"] == instance_id
        assert report["launch_index"] == index
        assert report["user_data"] == "sleep"
        assert report["zone"] == "us-east-1a"
        assert report["has_access_key"] is False
        assert report["cwd"].endswith(f"/instances/{instance_id}/root")
        assert pid_alive(report["pid"])
        # held pending for the boot delay: its process started no sooner (a slow machine only
        # makes the gap longer; a DescribeInstances within 1.5 s would race the timer)
        assert report["started"] - launched[instance_id] >= delay, report

    ec2.terminate_instances(InstanceIds=ids)
    for instance_id in ids:
        pid = reports[instance_id]["pid"]
        wait_for(lambda pid=pid: not pid_alive(pid), what=f"process {pid} of {instance_id} ended")
        # EC2 says shutting-down while the processes end, then terminated
        wait_for(lambda i=instance_id: _state(ec2, i) == "terminated", what="terminated")


def test_instance_terminating_itself_ends_its_process(prog_cloud: Any, boto3_client: Any) -> None:
    ec2 = boto3_client("ec2")
    [instance_id] = _run(ec2, prog_cloud, 1, "terminate")
    wait_for(lambda: _state(ec2, instance_id) == "terminated", what="self-termination")
    report = _prog_report(ec2, instance_id)
    assert report is not None and report["instance_id"] == instance_id
    wait_for(lambda: not pid_alive(report["pid"]), what="process ended")
    output = ec2.get_console_output(InstanceId=instance_id)["Output"]
    assert "terminating myself" in output


def test_instance_whose_process_exits_stays_running(prog_cloud: Any, boto3_client: Any) -> None:
    ec2 = boto3_client("ec2")
    [instance_id] = _run(ec2, prog_cloud, 1, "exit")
    exit_file = Path(prog_cloud.state_dir) / "local" / "instances" / instance_id / "exit_code"
    wait_for(exit_file.is_file, what="process exit")
    assert exit_file.read_text().strip() == "0"
    assert _state(ec2, instance_id) == "running"
    ec2.terminate_instances(InstanceIds=[instance_id])


def test_stopping_an_instance_ends_its_process(prog_cloud: Any, boto3_client: Any) -> None:
    ec2 = boto3_client("ec2")
    [instance_id] = _run(ec2, prog_cloud, 1, "sleep")
    report = wait_for(lambda: _prog_report(ec2, instance_id), what="console")
    ec2.stop_instances(InstanceIds=[instance_id])
    wait_for(lambda: not pid_alive(report["pid"]), what="process ended at stop")
    ec2.terminate_instances(InstanceIds=[instance_id])


def test_two_reservations_do_not_see_each_others_metadata(
    prog_cloud: Any, boto3_client: Any
) -> None:
    ec2 = boto3_client("ec2")
    first = _run(ec2, prog_cloud, 2, "sleep")
    second = _run(ec2, prog_cloud, 2, None)  # no user-data: instance_prog terminates itself
    for instance_id in first:
        report = wait_for(lambda i=instance_id: _prog_report(ec2, i), what="console")
        assert report["instance_id"] == instance_id
        assert report["user_data"] == "sleep"
    for instance_id in second:
        report = wait_for(lambda i=instance_id: _prog_report(ec2, i), what="console")
        assert report["instance_id"] == instance_id
        assert report["user_data"] is None
    endpoints = {_record(prog_cloud, i)["imds_endpoint"] for i in first + second}
    assert len(endpoints) == 4
    ec2.terminate_instances(InstanceIds=first + second)


def test_metadata_endpoint_requires_token_and_serves_credentials(
    prog_cloud: Any, boto3_client: Any
) -> None:
    ec2 = boto3_client("ec2")
    [instance_id] = _run(ec2, prog_cloud, 1, "sleep")
    endpoint = _record(prog_cloud, instance_id)["imds_endpoint"]
    assert _imds(endpoint, "/latest/meta-data/instance-id", None)[0] == 401
    assert _imds(endpoint, "/latest/meta-data/instance-id", "forged")[0] == 401
    status, token = _imds(endpoint, "/latest/api/token", None, method="PUT")
    assert status == 200
    tok = token.decode()
    assert _imds(endpoint, "/latest/meta-data/instance-id", tok) == (200, instance_id.encode())
    assert _imds(endpoint, "/latest/meta-data/placement/region", tok) == (200, b"us-east-1")
    status, type_ = _imds(endpoint, "/latest/meta-data/instance-type", tok)
    assert status == 200 and type_
    status, role = _imds(endpoint, "/latest/meta-data/iam/security-credentials/", tok)
    assert status == 200
    status, body = _imds(
        endpoint, f"/latest/meta-data/iam/security-credentials/{role.decode()}", tok
    )
    credentials = json.loads(body)
    assert credentials["Code"] == "Success"
    assert {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"} <= set(credentials)
    assert _imds(endpoint, "/awsac-local/volumes/vol-nonexistent", tok)[0] == 404
    ec2.terminate_instances(InstanceIds=[instance_id])


def test_user_data_is_404_when_none(prog_cloud: Any, boto3_client: Any) -> None:
    ec2 = boto3_client("ec2")
    service.configure(prog_cloud, boot_command=["sleep", "30"])
    [instance_id] = _run(ec2, prog_cloud, 1, None)
    endpoint = _record(prog_cloud, instance_id)["imds_endpoint"]
    _, token = _imds(endpoint, "/latest/api/token", None, method="PUT")
    assert _imds(endpoint, "/latest/user-data", token.decode())[0] == 404
    ec2.terminate_instances(InstanceIds=[instance_id])


def test_console_output_is_base64_on_the_wire(prog_cloud: Any, boto3_client: Any) -> None:
    """GetConsoleOutput carries base64 as EC2 does (botocore decodes it; undecoded it must be)."""
    import botocore.handlers

    ec2 = boto3_client("ec2")
    [instance_id] = _run(ec2, prog_cloud, 1, "exit")
    wait_for(lambda: _prog_report(ec2, instance_id), what="console")
    ec2.meta.events.unregister(
        "after-call.ec2.GetConsoleOutput", botocore.handlers.decode_console_output
    )
    encoded = ec2.get_console_output(InstanceId=instance_id)["Output"]
    assert b"instance-prog" in base64.b64decode(encoded)
    ec2.terminate_instances(InstanceIds=[instance_id])


def test_boot_command_of_none_boots_no_process(local_cloud: Any, boto3_client: Any) -> None:
    """Boot command []: the instances go running and terminated as usual, with no process and no
    metadata endpoint (the benchmarks' 1,250 emulated instances)."""
    before = service._side(local_cloud.endpoint, "health")
    service.configure(local_cloud, boot_command=[])
    try:
        ec2 = boto3_client("ec2")
        ids = _run(ec2, local_cloud, 2, None)
        for instance_id in ids:
            wait_for(lambda i=instance_id: _state(ec2, i) == "running", what=f"{instance_id} up")
        for instance_id in ids:
            record = _record(local_cloud, instance_id)
            assert record["pid"] is None and record["imds_endpoint"] is None
            assert record["boot_command"] == []
            output = ec2.get_console_output(InstanceId=instance_id).get("Output") or ""
            assert "boots no process" in output
        ec2.terminate_instances(InstanceIds=ids)
        for instance_id in ids:
            wait_for(lambda i=instance_id: _state(ec2, i) == "terminated", what="terminated")
    finally:
        service.configure(local_cloud, boot_command=before["boot_command"])
