"""Read what a session printed: an instance's console output, a job's live tail or saved log."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import tarfile

from awsac_agent import s3layout
from awsac_agent.status import TERMINAL

from ..cloud import Cloud, cloud_errors, error_code
from ..records import SessionRecord
from .common import cloud_for, store_for


async def console_output(
    record: SessionRecord, instance_id: str, *, cloud: Cloud | None = None
) -> str:
    """The instance's console output (EC2 GetConsoleOutput), '' when there is none yet."""
    async with cloud_for(record, cloud) as c:
        ec2 = await c.client("ec2")
        async with cloud_errors(f"GetConsoleOutput {instance_id}"):
            try:
                resp = await ec2.get_console_output(InstanceId=instance_id, Latest=True)
            except Exception as exc:  # noqa: BLE001
                if error_code(exc) in ("InvalidParameterValue", "UnsupportedOperation"):
                    resp = await ec2.get_console_output(InstanceId=instance_id)
                else:
                    raise
        out = resp.get("Output") or ""
        if isinstance(out, bytes):
            out = out.decode("utf-8", "replace")
        if out and not any(ch in out for ch in " \n") and len(out) % 4 == 0:
            with contextlib.suppress(ValueError):
                out = base64.b64decode(out).decode("utf-8", "replace")
        return out


def _log_from_tar(data: bytes, jobnr: int) -> str:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        members = [m for m in tar.getmembers() if m.isfile()]
        pick = next(
            (m for m in members if m.name.endswith(s3layout.stdouterr_log_name(jobnr))), None
        )
        pick = pick or next((m for m in members if m.name.endswith(".log")), None)
        if pick is None:
            return ""
        fh = tar.extractfile(pick)
        return fh.read().decode("utf-8", "replace") if fh else ""


async def _get(cloud: Cloud, bucket: str, key: str) -> bytes | None:
    s3 = await cloud.client("s3")
    try:
        resp = await s3.get_object(Bucket=bucket, Key=key)
    except Exception as exc:  # noqa: BLE001
        if error_code(exc) in ("NoSuchKey", "404"):
            return None
        async with cloud_errors(f"s3://{bucket}/{key}"):
            raise
    async with resp["Body"] as body:
        return await body.read()


async def job_log(
    record: SessionRecord, jobnr: int, *, cloud: Cloud | None = None
) -> tuple[str, bool]:
    """(text, is_live): the live tail while the job runs, the saved log after."""
    async with cloud_for(record, cloud) as c:
        recs = {r.jobnr: r for r in await store_for(record, c).read_all()}
        rec = recs.get(jobnr)
        terminal = rec is not None and rec.status in TERMINAL
        if terminal:
            data = await _get(c, record.bucket, s3layout.stdouterr_key(record.session_id, jobnr))
            if data is not None:
                return await asyncio.to_thread(_log_from_tar, data, jobnr), False
        data = await _get(c, record.bucket, s3layout.live_log_key(record.session_id, jobnr))
        return (data or b"").decode("utf-8", "replace"), not terminal
