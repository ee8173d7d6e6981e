"""The IAM policies and the tools that check them: action matching with wildcards, the
botocore call recorder, and the shape of ami/iam/*-policy.json (least privilege by construction)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import awscalls  # ami/iam, on sys.path through conftest.py
import policycheck
import pytest
from policycheck import Call, Policy, Statement

from .helpers import IAM

SESSION = "251123_1845--test--ab12"
BUCKET = "awsac-test-bucket"


def _policy(*statements: Statement) -> Policy:
    return Policy("test", statements)


def test_wildcards() -> None:
    m = policycheck.wildcard_match
    assert m("s3:Get*", "s3:GetObject")
    assert m("s3:*", "s3:PutObject")
    assert not m("s3:Get*", "s3:PutObject")
    assert m("??????_????--*--????", SESSION)
    assert not m("??????_????--*--????", "secrets")
    assert not m("??????_????--*--????", "251123_1845--x--ab1")  # 3 hex digits
    assert m("sdb:select", "sdb:Select", ignore_case=True)
    assert not m("arn:aws:s3:::b/*", "arn:aws:s3:::B/x")  # resources are case-sensitive


def test_iam_actions_map_botocore_operations() -> None:
    def actions(service: str, op: str, **kw: object) -> list[str]:
        return policycheck.iam_actions(Call("client", service, op, **kw))  # type: ignore[arg-type]

    assert actions("s3", "HeadObject") == ["s3:GetObject"]
    assert actions("s3", "ListObjectsV2") == ["s3:ListBucket"]
    assert actions("s3", "UploadPart") == ["s3:PutObject"]
    assert actions("s3", "DeleteObjects") == ["s3:DeleteObject"]
    assert actions("sdb", "Select") == ["sdb:Select"]
    assert actions("ec2", "RunInstances", passes_role=True, tags_on_create=True) == [
        "ec2:RunInstances",
        "iam:PassRole",
        "ec2:CreateTags",
    ]


def test_allows_checks_actions_resources_and_deny() -> None:
    allow = Statement(
        "Allow", ("s3:GetObject",), (f"arn:aws:s3:::{BUCKET}/??????_????--*--????/*",)
    )
    p = _policy(allow)
    good = f"arn:aws:s3:::{BUCKET}/{SESSION}/sessionarchive.tar.bz2"
    assert policycheck.allows(p, "s3:GetObject", [good])
    assert not policycheck.allows(p, "s3:GetObject", [f"arn:aws:s3:::{BUCKET}/other/key"])
    assert not policycheck.allows(p, "s3:PutObject", [good])
    deny = Statement("Deny", ("s3:*",), ("*",))
    assert not policycheck.allows(_policy(allow, deny), "s3:GetObject", [good])


def test_denied_calls_and_unused_grants() -> None:
    p = _policy(
        Statement("Allow", ("s3:GetObject", "s3:PutObject"), ("*",)),
        Statement("Allow", ("ec2:Describe*",), ("*",)),
    )
    calls = [
        Call("agent", "s3", "HeadObject", bucket=BUCKET, key=f"{SESSION}/a"),
        Call("agent", "ec2", "DescribeVolumes"),
        Call("agent", "ec2", "TerminateInstances"),
    ]
    assert policycheck.denied_calls(p, calls) == [
        "agent: ec2:TerminateInstances (from TerminateInstances)"
    ]
    assert policycheck.unused_grants(p, calls) == ["s3:PutObject"]


@pytest.mark.parametrize("path", [policycheck.INSTANCE_POLICY, policycheck.CLIENT_POLICY])
def test_policies_are_least_privilege_by_shape(path: Path) -> None:
    doc = json.loads(path.read_text())
    assert doc["Version"] == "2012-10-17"
    policy = policycheck.load_policy(path, BUCKET)
    sids = [st.sid for st in policy.statements]
    assert len(sids) == len(set(sids)) and all(sids)
    for st in policy.statements:
        assert st.effect == "Allow"
        for action in st.actions:
            service, _, name = action.partition(":")
            assert service in ("s3", "ec2", "sdb", "iam", "servicequotas") and name
            assert "*" not in action, f"{path.name} {st.sid}: wildcard action {action}"
        for res in st.resources:
            if res.startswith("arn:aws:s3:::"):
                assert res.startswith(f"arn:aws:s3:::{BUCKET}"), (
                    f"{st.sid}: {res} is not our bucket"
                )
            if res.startswith(f"arn:aws:s3:::{BUCKET}/"):
                assert res == f"arn:aws:s3:::{BUCKET}/??????_????--*--????/*", res
    # Everything that changes or destroys an EC2 resource is conditioned on the session tag.
    for st in json.loads(path.read_text())["Statement"]:
        actions = [st["Action"]] if isinstance(st["Action"], str) else st["Action"]
        mutating = [
            a
            for a in actions
            if a.startswith("ec2:") and not a.startswith(("ec2:Describe", "ec2:CreateTags"))
        ]
        resources = [st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"]
        if mutating and any(":instance/" in r or ":volume/" in r for r in resources):
            cond = json.dumps(st.get("Condition", {}))
            assert "awsac:session" in cond, (
                f"{path.name} {st['Sid']}: {mutating} without a tag condition"
            )


def test_instance_policy_cannot_touch_other_keys_or_domains() -> None:
    p = policycheck.load_policy(policycheck.INSTANCE_POLICY, BUCKET)
    own = Call("agent", "s3", "PutObject", bucket=BUCKET, key=f"{SESSION}/results_job_1.tar.bz2")
    foreign = Call("agent", "s3", "PutObject", bucket=BUCKET, key="notes/secret.txt")
    other_bucket = Call("agent", "s3", "GetObject", bucket="someone-else", key=f"{SESSION}/x")
    assert policycheck.denied_calls(p, [own]) == []
    assert len(policycheck.denied_calls(p, [foreign, other_bucket])) == 2
    assert policycheck.denied_calls(p, [Call("agent", "sdb", "Select", domain=SESSION)]) == []
    assert policycheck.denied_calls(p, [Call("agent", "sdb", "DeleteDomain", domain=SESSION)])
    assert policycheck.denied_calls(p, [Call("agent", "ec2", "RunInstances")])


def _moto_client(service: str):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.session.Session().client(
        service,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_recorder_records_calls_in_this_process(tmp_path: Path) -> None:
    from moto import mock_aws

    log = tmp_path / "calls.jsonl"
    assert awscalls.install(str(log))
    try:
        with mock_aws():
            s3 = _moto_client("s3")
            s3.create_bucket(Bucket=BUCKET)
            s3.put_object(Bucket=BUCKET, Key=f"{SESSION}/x", Body=b"1")
            s3.head_object(Bucket=BUCKET, Key=f"{SESSION}/x")
            _moto_client("ec2").describe_volumes()
    finally:
        awscalls.uninstall()
    calls = policycheck.read_calls(log)
    assert [(c.service, c.operation) for c in calls] == [
        ("s3", "CreateBucket"),
        ("s3", "PutObject"),
        ("s3", "HeadObject"),
        ("ec2", "DescribeVolumes"),
    ]
    assert calls[1].key == f"{SESSION}/x" and calls[1].component == "client"


async def test_recorder_records_aiobotocore_calls(tmp_path: Path) -> None:
    """The client is async (aiobotocore): its sessions are hooked the same way."""
    from aiobotocore.session import get_session
    from moto.server import ThreadedMotoServer

    from .test_bootstrap import _free_port

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    log = tmp_path / "calls.jsonl"
    awscalls.install(str(log))
    try:
        session = get_session()
        async with session.create_client(
            "s3",
            region_name="us-east-1",
            endpoint_url=f"http://127.0.0.1:{port}",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ) as s3:
            await s3.create_bucket(Bucket=BUCKET)
            await s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{SESSION}/")
    finally:
        awscalls.uninstall()
        server.stop()
    calls = policycheck.read_calls(log)
    assert [c.operation for c in calls] == ["CreateBucket", "ListObjectsV2"]
    assert calls[1].prefix == f"{SESSION}/"


def test_recorder_hooks_child_processes_and_tells_agent_from_client(tmp_path: Path) -> None:
    """A child with recorder/ on its PYTHONPATH records too; an instance's agent (it has its own
    metadata endpoint) is recorded as "agent"."""
    log = tmp_path / "calls.jsonl"
    code = (
        "from moto import mock_aws\n"
        "import boto3\n"
        "with mock_aws():\n"
        "    boto3.client('s3', region_name='us-east-1', aws_access_key_id='a',"
        " aws_secret_access_key='b').list_buckets()\n"
    )
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(IAM / "recorder"), os.environ.get("PYTHONPATH", "")]),
        AWSAC_RECORD_AWS_CALLS=str(log),
        AWS_EC2_METADATA_SERVICE_ENDPOINT="http://127.0.0.1:9/",
    )
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    calls = policycheck.read_calls(log)
    assert [(c.component, c.service, c.operation) for c in calls] == [
        ("agent", "s3", "ListBuckets")
    ]
