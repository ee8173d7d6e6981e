"""What a session left in the local cloud: live instances, volumes, objects and unfinished
multipart uploads carrying its id, and temporary files of a start on this machine.

Shared by the client's end-to-end tests and the fault tests' audit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from awsac_agent.sessionid import session_tag_filter


@dataclass(frozen=True)
class Leftovers:
    instances: list[str]
    volumes: list[str]
    objects: list[str]
    uploads: list[str] = field(default_factory=list)  # unfinished multipart uploads (billed)


def leftovers_in(boto3_client: Callable[[str], Any], sid: str, bucket: str) -> Leftovers:
    """Live instances, volumes, objects and unfinished multipart uploads still carrying ``sid``."""
    ec2 = boto3_client("ec2")
    filt = [session_tag_filter(sid)]
    inst = [
        i["InstanceId"]
        for r in ec2.describe_instances(Filters=filt)["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] != "terminated"
    ]
    vols = [
        v["VolumeId"]
        for v in ec2.describe_volumes(Filters=filt)["Volumes"]
        if v["State"] != "deleted"
    ]
    s3 = boto3_client("s3")
    try:
        objs = [
            o["Key"]
            for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"{sid}/").get("Contents", [])
        ]
    except s3.exceptions.NoSuchBucket:
        objs = []
    try:
        ups = [
            f"{u['Key']} ({u['UploadId']})"
            for u in s3.list_multipart_uploads(Bucket=bucket, Prefix=f"{sid}/").get("Uploads", [])
        ]
    except s3.exceptions.NoSuchBucket:
        ups = []
    return Leftovers(inst, vols, objs, ups)


def scratch_left() -> list[str]:
    """Temporary files of starts left on this machine (beside the session records)."""
    from awsac_tui import records

    return [str(p) for p in records.scratch_files()]
