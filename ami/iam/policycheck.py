"""Check recorded AWS calls against ami/iam/*-policy.json: which IAM action each call needs,
whether a policy allows it (actions and S3/SimpleDB resources; conditions are not evaluated).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

IAM_DIR = Path(__file__).resolve().parent
INSTANCE_POLICY = IAM_DIR / "instance-policy.json"
CLIENT_POLICY = IAM_DIR / "client-policy.json"
BUCKET_PLACEHOLDER = "AWSAC_BUCKET"

# botocore operation -> IAM action, where the two differ (the default is service:Operation).
_S3_ACTIONS = {
    "HeadObject": "GetObject",
    "HeadBucket": "ListBucket",
    "ListObjects": "ListBucket",
    "ListObjectsV2": "ListBucket",
    "ListObjectVersions": "ListBucketVersions",
    "ListMultipartUploads": "ListBucketMultipartUploads",
    "CreateMultipartUpload": "PutObject",
    "UploadPart": "PutObject",
    "CompleteMultipartUpload": "PutObject",
    "DeleteObjects": "DeleteObject",
}
_IAM_PREFIX = {
    "s3": "s3",
    "ec2": "ec2",
    "sdb": "sdb",
    "sts": "sts",
    "iam": "iam",
    "service-quotas": "servicequotas",
}


@dataclass(frozen=True)
class Call:
    """One recorded AWS API call (see awscalls.py for the recorder)."""

    component: str
    service: str
    operation: str
    bucket: str = ""
    key: str = ""
    prefix: str = ""
    domain: str = ""
    passes_role: bool = False
    tags_on_create: bool = False

    @classmethod
    def from_json(cls, data: dict) -> Call:
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in fields})


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    sid: str = ""


@dataclass(frozen=True)
class Policy:
    name: str
    statements: tuple[Statement, ...]


def _as_tuple(value: str | list[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def load_policy(path: Path, bucket: str = BUCKET_PLACEHOLDER) -> Policy:
    """Parse an IAM policy document, with the bucket placeholder replaced by ``bucket``."""
    doc = json.loads(path.read_text().replace(BUCKET_PLACEHOLDER, bucket))
    statements = []
    for st in doc["Statement"]:
        if "NotAction" in st or "NotResource" in st:
            raise ValueError(f"{path}: NotAction/NotResource are not supported by this checker")
        statements.append(
            Statement(
                effect=st["Effect"],
                actions=_as_tuple(st["Action"]),
                resources=_as_tuple(st.get("Resource", "*")),
                sid=st.get("Sid", ""),
            )
        )
    return Policy(path.name, tuple(statements))


def wildcard_match(pattern: str, text: str, ignore_case: bool = False) -> bool:
    """IAM wildcard matching: ``*`` any run of characters, ``?`` exactly one."""
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return (
        re.fullmatch(rx, text, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL) is not None
    )


def iam_actions(call: Call) -> list[str]:
    """The IAM actions ``call`` needs (including the implied ones: PassRole, tag-on-create)."""
    prefix = _IAM_PREFIX.get(call.service, call.service)
    op = call.operation
    if call.service == "s3" and op == "CopyObject":
        # IAM has no CopyObject action: a copy reads the source and writes the destination (the
        # agent copies an attempt's outputs to the paper's names inside the session's prefix, so
        # the destination's ARN stands for both here).
        actions = ["s3:GetObject", "s3:PutObject"]
    else:
        if call.service == "s3":
            op = _S3_ACTIONS.get(op, op)
        actions = [f"{prefix}:{op}"]
    if call.passes_role:
        actions.append("iam:PassRole")
    if call.tags_on_create:
        actions.append("ec2:CreateTags")
    return actions


def resource_arns(call: Call, action: str) -> list[str]:
    """The resource ARNs ``action`` of ``call`` touches, where we know them (S3 and SimpleDB)."""
    if call.service == "s3" and call.bucket:
        if call.key and action not in ("s3:ListBucket", "s3:CreateBucket"):
            return [f"arn:aws:s3:::{call.bucket}/{call.key}"]
        return [f"arn:aws:s3:::{call.bucket}"]
    if call.service == "sdb" and call.domain:
        return [f"arn:aws:sdb:region:account:domain/{call.domain}"]
    return []


def _statement_allows(st: Statement, action: str, arns: list[str]) -> bool:
    if not any(wildcard_match(a, action, ignore_case=True) for a in st.actions):
        return False
    return all(any(wildcard_match(r, arn) for r in st.resources) for arn in arns)


def allows(policy: Policy, action: str, arns: Iterable[str] = ()) -> bool:
    """Whether ``policy`` allows ``action`` on all of ``arns`` (an explicit Deny wins)."""
    arns = list(arns)
    if any(st.effect == "Deny" and _statement_allows(st, action, arns) for st in policy.statements):
        return False
    return any(
        st.effect == "Allow" and _statement_allows(st, action, arns) for st in policy.statements
    )


def denied_calls(policy: Policy, calls: Iterable[Call]) -> list[str]:
    """One line per (action, resource) that ``policy`` does not allow; empty if all are allowed."""
    problems = set()
    for call in calls:
        for action in iam_actions(call):
            arns = resource_arns(call, action)
            if not allows(policy, action, arns):
                where = f" on {', '.join(arns)}" if arns else ""
                problems.add(f"{call.component}: {action}{where} (from {call.operation})")
    return sorted(problems)


def granted_actions(policy: Policy) -> set[str]:
    """Every action pattern a policy's Allow statements name."""
    return {a for st in policy.statements if st.effect == "Allow" for a in st.actions}


def unused_grants(policy: Policy, calls: Iterable[Call]) -> list[str]:
    """Granted action patterns that no call needs (a least-privilege policy has none)."""
    needed = {a for call in calls for a in iam_actions(call)}
    return sorted(
        g for g in granted_actions(policy) if not any(wildcard_match(g, a, True) for a in needed)
    )


def read_calls(path: Path) -> list[Call]:
    """The calls recorded (one JSON object per line) in ``path``."""
    if not path.exists():
        return []
    return [Call.from_json(json.loads(line)) for line in path.read_text().splitlines() if line]
