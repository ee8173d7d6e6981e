"""The RunInstances call of a start, the price table, the paper-style output of the CLI."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from awsac_agent.jobscfg import JobLine

from awsac_tui import session
from awsac_tui.cli import build_parser, main
from awsac_tui.report import format_job_blocks
from awsac_tui.session.start import _run_args
from awsac_tui.spec import CloudProfile, SessionSpec
from awsac_tui.views import JobView, SessionSnapshot, snapshot_to_dict


def plan(**spec_kw) -> session.StartPlan:
    spec = SessionSpec(
        instance_type="c5.large",
        image_id="ami-0123456789abcdef0",
        bucket="atlassessions",
        shortdescr="eventgen",
        tags={"project": "x"},
        **spec_kw,
    )
    return session.StartPlan(
        spec=spec,
        spec_path=Path("session.toml"),
        job_lines=(JobLine(None, "a.sh", 4),),
        archive_path=Path("a.tar.bz2"),
        archive_name="sessionarchive.tar.bz2",
        archive_note=None,
        vcpus=2,
        cores_per_instance=2,
        n_jobs=4,
        n_instances=2,
        unused_cores=0,
        session_id="081215_1646--eventgen--1816",
        userdata="081215_1646--eventgen--1816;atlassessions;sessionarchive.tar.bz2;2",
        cloud=CloudProfile(local=True),
    )


def test_one_reservation_tagged_imdsv2_with_the_spec_network() -> None:
    kw = _run_args(
        plan(
            key_name="mykey",
            security_groups=("sg-0123abcd", "default"),
            subnet_id="subnet-1234",
            instance_profile="awsac-instance",
            spot=True,
            spot_max_price="0.05",
        )
    )
    assert kw["MinCount"] == kw["MaxCount"] == 2
    assert kw["ClientToken"] == "awsac-081215_1646--eventgen--1816"
    assert kw["MetadataOptions"]["HttpTokens"] == "required"
    for ts in kw["TagSpecifications"]:
        tags = {t["Key"]: t["Value"] for t in ts["Tags"]}
        assert tags["awsac:session"] == "081215_1646--eventgen--1816" and tags["project"] == "x"
    assert {ts["ResourceType"] for ts in kw["TagSpecifications"]} == {"instance", "volume"}
    assert kw["KeyName"] == "mykey"
    assert kw["SecurityGroupIds"] == ["sg-0123abcd"] and kw["SecurityGroups"] == ["default"]
    assert kw["SubnetId"] == "subnet-1234"
    assert kw["IamInstanceProfile"] == {"Name": "awsac-instance"}
    assert kw["InstanceMarketOptions"]["SpotOptions"]["MaxPrice"] == "0.05"
    assert kw["UserData"].endswith(";2")


def test_spec_tags_cannot_override_the_session_tag() -> None:
    p = plan()
    p = session.StartPlan(
        **{
            **p.__dict__,
            "spec": SessionSpec(**{**p.spec.__dict__, "tags": {"awsac:session": "other"}}),
        }
    )
    tags = {t["Key"]: t["Value"] for t in _run_args(p)["TagSpecifications"][0]["Tags"]}
    assert tags["awsac:session"] == "081215_1646--eventgen--1816"


def test_estimate_cost_from_the_shipped_table() -> None:
    est = session.estimate_cost("c5.large", 2, 3.0)
    assert est.price_per_hour == 0.085 and est.total == round(0.085 * 6, 4)
    unknown = session.estimate_cost("x9.mega", 1, 1.0)
    assert unknown.total is None and "no price" in unknown.note


def test_paper_job_block_and_json_shape() -> None:
    t = datetime(2008, 12, 15, 16, 49, 3, tzinfo=UTC)
    snap = SessionSnapshot(
        session_id="081215_1646--eventgen--1816",
        cloud="local",
        taken_at=t,
        jobs=(JobView(1, "finished", "i-33f64f5a", 0, "gen_30.sh", None, 0, t, t),),
    )
    text = format_job_blocks(snap)
    assert text.splitlines()[:3] == [
        "===== Job 1 (status: finished) =====",
        "running gen_30.sh on instance i-33f64f5a with launchindex 0",
        "started running: 2008-12-15 16:49:03",
    ]
    d = snapshot_to_dict(snap)
    assert d["jobs"][0]["runstarttime"] == "2008-12-15T16:49:03Z"
    assert d["jobs"][0]["returncode"] == 0 and d["jobs"][0]["error"] is None


def test_usage_errors_exit_2_without_traceback(capsys) -> None:
    assert main(["--check"]) == 2
    assert "-c CONFIGFILE" in capsys.readouterr().err
    assert main(["kill"]) == 2
    assert main(["--getresults", "-c", "x.cfg"]) == 2
    assert "start" in build_parser().format_help()


def test_unreachable_endpoint_is_one_clear_message(tmp_path, monkeypatch, capsys) -> None:
    from awsac_tui import records

    monkeypatch.setenv("AWSAC_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    records.save_record(
        records.SessionRecord(
            session_id="081215_1646--eventgen--1816",
            state="running",
            bucket="atlassessions",
            n_jobs=1,
            status_store="s3",
            cloud=CloudProfile(endpoint_url="http://127.0.0.1:9", region="us-east-1"),
        )
    )
    assert main(["check", "1816"]) == 2
    err = capsys.readouterr().err
    assert "Cannot reach the cloud endpoint http://127.0.0.1:9" in err and "Traceback" not in err


def test_check_json_has_the_documented_keys_plus_silent_and_notices() -> None:
    from awsac_tui.views import InstanceView, VolumeView

    t = datetime(2008, 12, 15, 16, 49, 3, tzinfo=UTC)
    snap = SessionSnapshot(
        session_id="s",
        cloud="local",
        taken_at=t,
        jobs=(JobView(1, "running"),),
        instances=(InstanceView("i-1", 0, "running", launch_time=t),),
        volumes=(VolumeView("vol-1", "snap-1", "in-use", "i-1", "/dev/sdh"),),
        notices=("status store throttled; showing the last good snapshot",),
    )
    d = snapshot_to_dict(snap)
    assert set(d) == {"session_id", "cloud", "jobs", "instances", "volumes", "notices", "cleaned"}
    assert d["cleaned"] is False
    assert d["notices"] == ["status store throttled; showing the last good snapshot"]
    assert d["instances"][0]["silent"] is False
    assert set(d["jobs"][0]) == {
        "jobnr", "status", "instance_id", "launchindex", "shellscript", "snapshot",
        "returncode", "runstarttime", "runendtime", "error", "attempt", "history",
    }  # fmt: skip
    assert set(d["instances"][0]) == {
        "instance_id", "launchindex", "state", "instance_type", "zone", "public_dns", "silent",
        "state_reason",
    }  # fmt: skip
    assert d["volumes"][0] == {
        "volume_id": "vol-1", "snapshot": "snap-1", "state": "in-use", "instance_id": "i-1",
        "device": "/dev/sdh",
    }  # fmt: skip
