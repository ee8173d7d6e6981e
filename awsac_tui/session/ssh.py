"""The command that opens a shell on an instance of a session."""

from __future__ import annotations

from pathlib import Path

from awsac_agent.errors import FormatError

from ..cloud import Cloud
from ..records import SessionRecord
from ..resources import describe_instances
from .common import SessionError, cloud_for


async def ssh_command(
    record: SessionRecord, instance_id: str, *, cloud: Cloud | None = None
) -> list[str]:
    """The command that opens a shell on the instance (local cloud: ``awsac local shell``)."""
    if record.cloud.local:
        return ["awsac", "local", "shell", instance_id]
    async with cloud_for(record, cloud) as c:
        inst = next(
            (
                i
                for i in await describe_instances(c, record.session_id)
                if i["InstanceId"] == instance_id
            ),
            None,
        )
    if inst is None:
        raise FormatError(f"instance {instance_id} is not part of session {record.session_id}")
    host = inst.get("PublicDnsName") or inst.get("PublicIpAddress")
    if not host:
        raise SessionError(
            f"instance {instance_id} has no public DNS name or address (state {inst['State']['Name']})"
        )
    cmd = ["ssh"]
    if record.key_name:
        key = Path.home() / ".ssh" / f"{record.key_name}.pem"
        if key.exists():
            cmd += ["-i", str(key)]
    return cmd + [f"{record.ssh_user}@{host}"]
