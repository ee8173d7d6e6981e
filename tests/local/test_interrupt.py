"""Spot interruptions on the local cloud (issue 13): the notice as EC2 serves it, then the reclaim."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from polling import wait_for

from awsac_tui.local import cli as local_cli
from awsac_tui.local import service
from awsac_tui.local.common import pid_alive
from awsac_tui.local.imds import InstanceMetadata, MetadataServer, SpotNotice
from awsac_tui.local.spot import SPOT_CODE, SPOT_MESSAGE, SpotInterrupter

SPOT = {"MarketType": "spot", "SpotOptions": {"SpotInstanceType": "one-time"}}


def _imds_get(endpoint: str, path: str) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    put = urllib.request.Request(endpoint.rstrip("/") + "/latest/api/token", method="PUT")
    put.add_header("X-aws-ec2-metadata-token-ttl-seconds", "60")
    with opener.open(put, timeout=5) as response:
        token = response.read().decode()
    get = urllib.request.Request(endpoint.rstrip("/") + path)
    get.add_header("X-aws-ec2-metadata-token", token)
    try:
        with opener.open(get, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _metadata(life_cycle: str = "spot") -> InstanceMetadata:
    return InstanceMetadata(
        "i-0abc", "r-1", "ami-1", 0, "c5.large", "us-east-1a", "us-east-1", "127.0.0.1",
        "127.0.0.1", "h", "h", "123456789012", None, life_cycle,
    )  # fmt: skip


def test_metadata_serves_the_notice_as_ec2_documents_it() -> None:
    from datetime import UTC, datetime, timedelta

    server = MetadataServer(_metadata(), lambda _vol: None)
    server.start()
    try:
        ep = server.endpoint
        assert _imds_get(ep, "/latest/meta-data/instance-life-cycle") == (200, "spot")
        for path in ("spot/instance-action", "spot/termination-time"):
            assert _imds_get(ep, f"/latest/meta-data/{path}")[0] == 404  # before any notice
        assert _imds_get(ep, "/latest/meta-data/events/recommendations/rebalance")[0] == 404
        now = datetime(2026, 5, 9, 12, 2, 31, tzinfo=UTC)
        server.spot_notice = SpotNotice("terminate", now + timedelta(seconds=120), now)
        status, body = _imds_get(ep, "/latest/meta-data/spot/instance-action")
        assert status == 200
        assert json.loads(body) == {"action": "terminate", "time": "2026-05-09T12:04:31Z"}
        assert _imds_get(ep, "/latest/meta-data/spot/termination-time") == (
            200,
            "2026-05-09T12:04:31Z",
        )
        status, body = _imds_get(ep, "/latest/meta-data/events/recommendations/rebalance")
        assert status == 200 and json.loads(body) == {"noticeTime": "2026-05-09T12:02:31Z"}
        assert "spot/" in _imds_get(ep, "/latest/meta-data/")[1].split()
    finally:
        server.stop()
    assert _metadata("on-demand").meta_data()["instance-life-cycle"] == "on-demand"


class _FakeInstance:
    def __init__(self, n: int, lifecycle: str | None = "spot") -> None:
        self.id = f"i-{n:04d}"
        self.ami_launch_index = n
        self.lifecycle = lifecycle


def test_the_fault_rule_picks_a_seeded_share_at_seeded_times() -> None:
    def picks(seed: int) -> list[tuple[float, str]]:
        timers: list[tuple[float, Any]] = []
        spot = SpotInterrupter(None, None, timer=lambda s, action: timers.append((s, action)))
        spot.configure(
            f"s3:PutObject:fail=1,cloud:spot-interrupt:share=0.3:seed={seed}:after=5:for=10:notice=2"
        )
        calls: list[tuple[str, float]] = []
        spot.interrupt = lambda iid, notice: calls.append((iid, notice))  # type: ignore[method-assign]
        spot.launched([_FakeInstance(n) for n in range(40)] + [_FakeInstance(99, None)])
        for _, action in timers:
            action()
        assert all(notice == 2 for _, notice in calls)
        assert "i-0099" not in {i for i, _ in calls}  # on-demand: never
        return sorted((round(s, 6), i) for (s, _), (i, _) in zip(timers, calls, strict=True))

    first = picks(7)
    assert first == picks(7)  # the same seed, the same instances at the same times
    assert first != picks(8)
    assert 4 <= len(first) <= 20  # about 30 % of 40
    assert all(5 <= s <= 15 for s, _ in first)


def test_bad_fault_rules_are_refused(local_cloud: Any) -> None:
    with pytest.raises(service.LocalCloudError, match="share"):
        service.configure(local_cloud, faults="cloud:spot-interrupt:seed=1")
    with pytest.raises(service.LocalCloudError, match="spot-interrupt"):
        service.configure(local_cloud, faults="cloud:explode:share=1")


@pytest.fixture
def spot_cloud(prog_cloud: Any) -> Any:
    yield prog_cloud
    service.configure(prog_cloud, faults="")


def _instance(ec2: Any, instance_id: str) -> dict[str, Any]:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def _launch(ec2: Any, info: Any, count: int = 1, spot: bool = True) -> list[str]:
    kwargs: dict[str, Any] = {"InstanceMarketOptions": SPOT} if spot else {}
    run = ec2.run_instances(
        ImageId=info.image_id, MinCount=count, MaxCount=count, UserData="sleep", **kwargs
    )
    ids = [i["InstanceId"] for i in run["Instances"]]
    for iid in ids:
        wait_for(lambda i=iid: _record(info, i), what=f"{iid} booted")
    return ids


def _record(info: Any, instance_id: str) -> dict[str, Any] | None:
    path = Path(info.state_dir) / "local" / "instances" / instance_id / "instance.json"
    return json.loads(path.read_text()) if path.is_file() else None


def test_interrupt_serves_the_notice_then_terminates_with_ec2s_reason(
    spot_cloud: Any, boto3_client: Any, aws_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    ec2 = boto3_client("ec2")
    [iid] = _launch(ec2, spot_cloud)
    record = _record(spot_cloud, iid)
    assert record is not None
    endpoint = record["imds_endpoint"]
    assert _imds_get(endpoint, "/latest/meta-data/instance-life-cycle") == (200, "spot")
    assert _instance(ec2, iid)["InstanceLifecycle"] == "spot"
    assert _imds_get(endpoint, "/latest/meta-data/spot/instance-action")[0] == 404

    started = time.time()
    assert local_cli.main(["interrupt", iid, "--notice", "1.5", "--json"]) == 0
    served = json.loads(capsys.readouterr().out)
    assert served["instance_id"] == iid and served["state_reason"] == SPOT_CODE
    status, body = _imds_get(endpoint, "/latest/meta-data/spot/instance-action")
    assert status == 200
    action = json.loads(body)
    assert action["action"] == "terminate" and action == {
        "action": "terminate",
        "time": served["time"],
    }
    when = time.mktime(time.strptime(action["time"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert started - 1 <= when <= started + 3
    assert _imds_get(endpoint, "/latest/meta-data/events/recommendations/rebalance")[0] == 200
    assert _instance(ec2, iid)["State"]["Name"] == "running"  # the notice comes first

    wait_for(lambda: _instance(ec2, iid)["State"]["Name"] == "terminated", 10, "the reclaim")
    gone = _instance(ec2, iid)
    assert gone["StateReason"] == {"Code": SPOT_CODE, "Message": SPOT_MESSAGE}
    assert time.time() - started >= 1.4  # not before the notice ran out
    wait_for(lambda: not pid_alive(record["pid"]), 10, "the instance's processes ended")


def test_interrupt_refuses_what_ec2_would_not_interrupt(spot_cloud: Any, boto3_client: Any) -> None:
    ec2 = boto3_client("ec2")
    [on_demand] = _launch(ec2, spot_cloud, spot=False)
    with pytest.raises(service.LocalCloudError, match="not a spot instance"):
        service.interrupt(on_demand, 1)
    with pytest.raises(service.LocalCloudError, match="no instance i-00000000000000000"):
        service.interrupt("i-00000000000000000", 1)
    ec2.terminate_instances(InstanceIds=[on_demand])
    wait_for(lambda: _instance(ec2, on_demand)["State"]["Name"] == "terminated", 10, "ended")


def test_the_fault_rule_interrupts_spot_instances_only(spot_cloud: Any, boto3_client: Any) -> None:
    ec2 = boto3_client("ec2")
    service.configure(
        spot_cloud, faults="cloud:spot-interrupt:share=1:seed=3:after=0.2:for=0.5:notice=0.5"
    )
    spot = _launch(ec2, spot_cloud, count=2)
    [on_demand] = _launch(ec2, spot_cloud, spot=False)
    for iid in spot:
        wait_for(lambda i=iid: _instance(ec2, i)["State"]["Name"] == "terminated", 15, iid)
        assert _instance(ec2, iid)["StateReason"]["Code"] == SPOT_CODE
    assert _instance(ec2, on_demand)["State"]["Name"] == "running"
    ec2.terminate_instances(InstanceIds=[on_demand])


SPOT_AUTORUN_EXTRA = "export AWSAC_SPOT_POLL_SECONDS=0.3\n"


@pytest.mark.slow
@pytest.mark.e2e
def test_a_session_on_spot_loses_its_jobs_with_the_cause_and_leaves_nothing(
    cli: Any, tmp_path: Path, local_cloud: Any, release_snapshot: str, boto3_client: Any
) -> None:
    from faults.helpers import BUCKET, LONG_JOB, all_done, audit, make_session, poll, start

    job_dir = make_session(
        tmp_path,
        local_cloud,
        release_snapshot,
        jobs="@SNAP@;a.sh;2\n",
        scripts={"a.sh": LONG_JOB},
        extra_toml="spot = true",
    )
    autorun = job_dir / "awsac_all_instances_autorun.sh"
    lines = autorun.read_text().splitlines(keepends=True)
    autorun.write_text("".join(lines[:2]) + SPOT_AUTORUN_EXTRA + "".join(lines[2:]))
    sid = start(cli, job_dir)
    snap = poll(cli, sid, lambda s: [j["status"] for j in s["jobs"]] == ["running"] * 2, 120)
    [iid] = {i["instance_id"] for i in snap["instances"]}
    service.interrupt(iid, notice=3)
    snap = poll(cli, sid, all_done, 60)
    assert [j["status"] for j in snap["jobs"]] == ["lost", "lost"], snap["jobs"]
    for job in snap["jobs"]:
        assert "spot interruption" in (job.get("error") or ""), job
    # gone: reclaimed at the end of the notice, or ended by its agent first (then EC2 says
    # Client.UserInitiatedShutdown, as it would)
    gone = _instance(boto3_client("ec2"), iid)
    assert gone["State"]["Name"] == "terminated"
    assert gone["StateReason"]["Code"] in (SPOT_CODE, "Client.UserInitiatedShutdown")
    # the partial logs went up before the instance did
    keys = [
        o["Key"]
        for o in boto3_client("s3").list_objects_v2(Bucket=BUCKET, Prefix=f"{sid}/")["Contents"]
    ]
    assert any("stdouterr_job_1" in k for k in keys), keys
    audit(cli, boto3_client, sid, cleanup=True)
