"""The documented rules through other clients: the AWS CLI v1 and an older boto3, each in a venv.

The venvs are made once per machine (and Python) under ~/.cache/awsac-conformance, keyed by the
pinned versions; the AWS CLI v1 pins a botocore that conflicts with ours, hence a venv of its own.
Making a venv needs the package index (pip); afterwards the tests run offline.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from awsac_tui.local.common import AVAILABILITY_ZONE, IMAGE_ID
from awsac_tui.local.service import client_env

pytestmark = pytest.mark.slow

AWSCLI = "awscli==1.40.0"
OLD_BOTO3 = "boto3==1.28.85"  # before AWS_ENDPOINT_URL support: endpoint_url is passed
CACHE = Path(
    os.environ.get("AWSAC_CONFORMANCE_CACHE", Path.home() / ".cache" / "awsac-conformance")
)


def venv_for(spec: str) -> Path:
    """A venv with ``spec`` installed, made once (under a lock: xdist workers may ask together)."""
    key = f"py{sys.version_info.major}.{sys.version_info.minor}-{spec.replace('==', '-')}"
    venv = CACHE / key
    ready = venv / ".ready"
    if ready.exists():
        return venv
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f"{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.exists():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
            subprocess.run(
                [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", spec],
                check=True,
                timeout=600,
            )
            ready.write_text(spec + "\n")
    return venv


def _env(local_cloud: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))}
    env.update(client_env(local_cloud))
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    return env


@pytest.fixture(scope="module")
def aws(local_cloud: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Run ``aws ARGS`` (the AWS CLI v1 from its venv): (exit code, stdout, stderr)."""
    binary = venv_for(AWSCLI) / "bin" / "aws"
    env = _env(local_cloud)
    # SimpleDB is a "preview" service in the AWS CLI: `aws configure set preview.sdb true`
    config = tmp_path_factory.mktemp("awscli") / "config"
    config.write_text("[preview]\nsdb = true\n")
    env["AWS_CONFIG_FILE"] = str(config)

    def run(*args: str) -> tuple[int, str, str]:
        done = subprocess.run(
            [str(binary), "--endpoint-url", local_cloud.endpoint, "--output", "json", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return done.returncode, done.stdout, done.stderr

    return run


def test_aws_cli_v1_simpledb_follows_the_documented_rules(aws: Any) -> None:
    domain = "cli-conformance"
    assert aws("sdb", "create-domain", "--domain-name", domain)[0] == 0
    try:
        rc, _, err = aws(
            "sdb", "put-attributes", "--domain-name", domain, "--item-name", "job1",
            "--attributes", "Name=status,Value=running,Replace=true", "Name=n,Value=1",
        )  # fmt: skip
        assert rc == 0, err
        rc, _, err = aws(
            "sdb", "put-attributes", "--domain-name", domain, "--item-name", "job1",
            "--attributes", "Name=status,Value=finished,Replace=true",
            "--expected", "Name=status,Value=pending",
        )  # fmt: skip
        assert rc != 0 and "ConditionalCheckFailed" in err
        rc, out, err = aws("sdb", "get-attributes", "--domain-name", domain, "--item-name", "job1")
        assert rc == 0, err
        got = {a["Name"]: a["Value"] for a in json.loads(out)["Attributes"]}
        assert got == {"status": "running", "n": "1"}
        rc, out, err = aws(
            "sdb", "select", "--select-expression",
            f"select count(*) from `{domain}` where status = 'running' and status = 'finished'",
        )  # fmt: skip
        assert rc == 0, err
        assert json.loads(out)["Items"][0]["Attributes"][0]["Value"] == "0"
        rc, out, err = aws("sdb", "list-domains", "--max-number-of-domains", "1", "--no-paginate")
        assert rc == 0, err
        assert len(json.loads(out)["DomainNames"]) == 1
    finally:
        aws("sdb", "delete-domain", "--domain-name", domain)


def test_aws_cli_v1_ec2_errors_are_the_documented_ones(aws: Any) -> None:
    rc, _, err = aws("ec2", "run-instances", "--image-id", "ami-0123456789abcdef0", "--count", "1")
    assert rc != 0 and "InvalidAMIID.NotFound" in err
    rc, _, err = aws(
        "ec2", "create-volume", "--size", "0", "--availability-zone", AVAILABILITY_ZONE
    )
    assert rc != 0 and "InvalidParameterValue" in err
    rc, _, err = aws("ec2", "describe-volumes", "--volume-ids", "vol-0123456789abcdef0")
    assert rc != 0 and "The volume 'vol-0123456789abcdef0' does not exist." in err
    rc, _, err = aws(
        "ec2", "describe-instances", "--filters", "Name=client-token,Values=no-such-token"
    )
    assert rc == 0, err


OLD_BOTO3_SCRIPT = r"""
import json, sys
import boto3, botocore.exceptions
endpoint, image = sys.argv[1], sys.argv[2]
kw = dict(endpoint_url=endpoint, region_name="us-east-1")
sdb, ec2 = boto3.client("sdb", **kw), boto3.client("ec2", **kw)
out = {"boto3": boto3.__version__}
def code(call):
    try:
        call()
    except botocore.exceptions.ClientError as exc:
        return [exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"]]
    return None
sdb.create_domain(DomainName="old-boto3")
sdb.batch_put_attributes(DomainName="old-boto3", Items=[
    {"Name": "a", "Attributes": [{"Name": "k", "Value": "x"}, {"Name": "k", "Value": "y"}]},
    {"Name": "b", "Attributes": [{"Name": "k", "Value": "x"}]}])
q = "select itemName() from `old-boto3` where "
out["and"] = [i["Name"] for i in sdb.select(SelectExpression=q + "k = 'x' and k = 'y'").get("Items", [])]
out["intersection"] = [i["Name"] for i in sdb.select(SelectExpression=q + "k = 'x' intersection k = 'y'").get("Items", [])]
out["multi"] = code(lambda: sdb.put_attributes(DomainName="old-boto3", ItemName="a",
    Attributes=[{"Name": "k", "Value": "z"}], Expected={"Name": "k", "Value": "x"}))
sdb.delete_domain(DomainName="old-boto3")
out["ami"] = code(lambda: ec2.run_instances(ImageId="ami-0123456789abcdef0", MinCount=1, MaxCount=1))
v = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
ec2.get_waiter("volume_available").wait(VolumeIds=[v], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
out["detach"] = code(lambda: ec2.detach_volume(VolumeId=v))
ec2.delete_volume(VolumeId=v)
print(json.dumps(out))
"""


def test_an_older_boto3_meets_the_same_rules(local_cloud: Any) -> None:
    python = venv_for(OLD_BOTO3) / "bin" / "python"
    done = subprocess.run(
        [str(python), "-c", OLD_BOTO3_SCRIPT, local_cloud.endpoint, IMAGE_ID],
        env=_env(local_cloud),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["boto3"] == OLD_BOTO3.split("==")[1]
    assert got["and"] == [] and got["intersection"] == ["a"]
    assert got["multi"] == ["MultiValuedAttribute", 409]
    assert got["ami"] == ["InvalidAMIID.NotFound", 400]
    assert got["detach"] == ["IncorrectState", 400]
