"""IMDSv2 client, device providers, fault rules, retry classification and the CLI's boot step."""

from __future__ import annotations

from pathlib import Path

import pytest
from agent_fake_imds import serve
from awsac_agent import faults
from awsac_agent.cli import main
from awsac_agent.devices import (
    AwsDeviceProvider,
    DeviceError,
    LocalDeviceProvider,
    nvme_path,
    provider_from_env,
)
from awsac_agent.errors import FormatError
from awsac_agent.imds import Imds, ImdsError
from awsac_agent.retry import botocore_config, is_retryable, requests_made
from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import ClientError, EndpointConnectionError

META = {
    "/latest/meta-data/instance-id": "i-0123456789abcdef0",
    "/latest/meta-data/ami-launch-index": "1",
    "/latest/meta-data/placement/availability-zone": "eu-west-1b",
    "/latest/meta-data/instance-type": "c5.large",
    "/latest/user-data": "260101_1200--unit--beef;bkt;sessionarchive.tar.bz2;2",
}


def test_imds_uses_a_token_and_reads_metadata() -> None:
    with serve(META) as fake:
        imds = Imds(fake.endpoint, backoff=0.01)
        assert imds.instance_id() == "i-0123456789abcdef0"
        assert imds.launch_index() == 1
        assert imds.availability_zone() == "eu-west-1b"
        assert imds.region() == "eu-west-1"  # from the zone when placement/region is missing
        assert imds.instance_type() == "c5.large"
        assert imds.user_data() == META["/latest/user-data"]
    puts = [r for r in fake.requests if r[0] == "PUT"]
    assert len(puts) == 1  # the token is cached
    assert all(tok == fake.TOKEN for method, _, tok in fake.requests if method == "GET")


def test_imds_user_data_none_on_404_and_retries_a_busy_endpoint() -> None:
    with serve({}, fail_first=2) as fake:
        imds = Imds(fake.endpoint, backoff=0.01)
        assert imds.user_data() is None
    assert sum(1 for r in fake.requests if r[0] == "PUT") == 3


def test_imds_endpoint_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9")
    assert Imds().endpoint == "http://127.0.0.1:9/"


def test_imds_unreachable_is_an_awsac_error() -> None:
    imds = Imds("http://127.0.0.1:9/", timeout=0.5, attempts=2, backoff=0.01)
    with pytest.raises(ImdsError, match="not reachable after 2 attempts"):
        imds.instance_id()


def test_local_device_provider_symlinks_the_content(tmp_path: Path) -> None:
    content = tmp_path / "snapcontent"
    (content / "14.2.10").mkdir(parents=True)
    info = {
        "volume_id": "vol-1",
        "attached": True,
        "content_dir": str(content),
        "device": "/dev/sdf",
    }
    with serve({"/awsac-local/volumes/vol-1": info}) as fake:
        prov = LocalDeviceProvider(Imds(fake.endpoint), poll=0.05)
        device = prov.find_device("vol-1", "/dev/sdf", timeout=2)
        mnt = tmp_path / "volumes" / "snap-1"
        prov.mount(device, mnt)
        assert (mnt / "14.2.10").is_dir()
        prov.unmount(mnt)
        assert not mnt.exists() and content.is_dir()
        with pytest.raises(DeviceError, match="vol-2"):
            prov.find_device("vol-2", "/dev/sdg", timeout=0.2)


def test_aws_device_provider_finds_nitro_and_xen_devices(tmp_path: Path) -> None:
    dev = tmp_path / "dev"
    (dev / "disk" / "by-id").mkdir(parents=True)
    (dev / "nvme1n1").touch()
    nvme_path("vol-0abc", dev / "disk" / "by-id").symlink_to(dev / "nvme1n1")
    (dev / "xvdg").touch()
    prov = AwsDeviceProvider(dev_root=dev, poll=0.05)
    assert prov.find_device("vol-0abc", "/dev/sdf", timeout=1) == str(dev / "nvme1n1")
    assert prov.find_device("vol-0def", "/dev/sdg", timeout=1) == str(dev / "xvdg")
    with pytest.raises(DeviceError, match="vol-0fff"):
        prov.find_device("vol-0fff", "/dev/sdh", timeout=0.1)
    assert nvme_path("vol-0abc").name == "nvme-Amazon_Elastic_Block_Store_vol0abc"


def test_provider_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWSAC_DEVICE_PROVIDER", "local")
    assert isinstance(provider_from_env(Imds("http://127.0.0.1:9/")), LocalDeviceProvider)
    monkeypatch.setenv("AWSAC_DEVICE_PROVIDER", "floppy")
    with pytest.raises(DeviceError, match="floppy"):
        provider_from_env()


def test_fault_rules_parse() -> None:
    (a, b) = faults.parse_faults(
        "s3:PutObject:fail=2:InternalError, sdb:PutAttributes:skip=3:ServiceUnavailable"
    )
    assert (a.service, a.operation, a.fail, a.skip, a.code, a.status) == (
        "s3",
        "PutObject",
        2,
        0,
        "InternalError",
        500,
    )
    assert (b.service, b.fail, b.skip, b.status) == ("simpledb", 1, 3, 503)
    for bad in ("s3", "s3:PutObject:fail=x", "s3:PutObject:bogus=1"):
        with pytest.raises(FormatError):
            faults.parse_faults(bad)


def test_fault_plan_fails_the_chosen_calls_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from moto import mock_aws

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3 = boto3.client(
            "s3",
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="y",
            config=botocore_config(total=1),  # no retries: each injected answer is seen
        )
        s3.create_bucket(Bucket="bkt-faults")
        plan = faults.FaultPlan(
            faults.parse_faults("s3:PutObject:match=results_:skip=1:fail=2:SlowDown")
        )
        plan.install(s3)
        s3.put_object(Bucket="bkt-faults", Key="s/results_job_1.tar.bz2", Body=b"1")  # skipped
        for _ in range(2):
            s3.put_object(Bucket="bkt-faults", Key="s/live/job_1.log", Body=b"x")  # does not match
            with pytest.raises(ClientError, match="SlowDown"):
                s3.put_object(Bucket="bkt-faults", Key="s/results_job_2.tar.bz2", Body=b"2")
        s3.put_object(Bucket="bkt-faults", Key="s/results_job_2.tar.bz2", Body=b"2")
        assert (
            s3.get_object(Bucket="bkt-faults", Key="s/results_job_2.tar.bz2")["Body"].read() == b"2"
        )
    assert plan.injected == [("s3", "PutObject", "SlowDown")] * 2


def _client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )


def test_retry_classification_and_botocore_config(monkeypatch: pytest.MonkeyPatch) -> None:
    assert is_retryable(_client_error("Throttling", 400))
    assert is_retryable(_client_error("Whatever", 503))
    assert not is_retryable(_client_error("AccessDenied", 403))
    assert is_retryable(EndpointConnectionError(endpoint_url="http://x"))
    try:
        try:
            raise _client_error("InternalError", 500)
        except ClientError as exc:
            raise S3UploadFailedError("Failed to upload") from exc
    except S3UploadFailedError as wrapped:
        assert is_retryable(wrapped)
    # the one retry layer: botocore's, bounded, configurable
    assert botocore_config().retries == {"mode": "standard", "total_max_attempts": 4}
    monkeypatch.setenv("AWSAC_RETRY_MODE", "adaptive")
    monkeypatch.setenv("AWSAC_MAX_ATTEMPTS", "2")
    assert botocore_config().retries == {"mode": "adaptive", "total_max_attempts": 2}
    assert botocore_config(total=8).retries["total_max_attempts"] == 8
    monkeypatch.setenv("AWSAC_RETRY_MODE", "legacy-loop")
    assert botocore_config().retries["mode"] == "standard"
    err = _client_error("SlowDown", 503)
    err.response["ResponseMetadata"]["RetryAttempts"] = 3
    assert requests_made(err) == 4


def test_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "autorun" in out and "processjobs" in out


@pytest.mark.parametrize(
    "user_data, says",
    [
        (None, "has no user-data"),
        ("#!/bin/bash\necho someone else's instance\n", "a script with no awsac session line"),
        ("key=value for another tool\n", "not ours"),
    ],
)
def test_autorun_without_our_user_data_exits_0(
    user_data: str | None,
    says: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    paths = dict(META)
    paths.pop("/latest/user-data")
    if user_data is not None:
        paths["/latest/user-data"] = user_data
    monkeypatch.setenv("AWSAC_WORK_DIR", str(tmp_path / "work"))
    with serve(paths) as fake:
        monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", fake.endpoint)
        assert main(["autorun"]) == 0
    assert says in capsys.readouterr().out
    assert not (tmp_path / "work" / "session").exists()


def test_session_string_from_legacy_and_cloud_init_user_data() -> None:
    from awsac_agent.autorun import session_string
    from awsac_agent.userdata import parse_userdata, wrap_cloud_init

    legacy = "260101_1200--unit--beef;bkt;sessionarchive.tar.bz2;2;store=s3"
    wrapped = wrap_cloud_init(legacy, "echo booting")
    assert session_string(legacy + "\n") == legacy
    assert session_string(wrapped) == legacy
    ud = parse_userdata(session_string(wrapped))
    assert ud is not None and ud.get("store") == "s3" and ud.cores_per_instance == 2
