"""User-data: the contract between client and agent.

The legacy string ``session_id;bucket;archive_name;cores_per_instance`` (the paper's) may be
followed by optional ``;key=value`` fields (our extension: status store kind, job and session
time limits). The agent also accepts a ``#!`` cloud-init script that carries the same string on a
line ``# awsac-userdata: <string>``, for stock images without the agent baked in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, Optional

from .errors import FormatError

MAX_USERDATA_BYTES = 16 * 1024
MARKER = "# awsac-userdata:"
_VALUE_RE = re.compile(r"^[A-Za-z0-9._:/+=-]*$")
_KEY_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class UserData:
    """What an instance needs to find its session."""

    session_id: str
    bucket: str
    archive_name: str
    cores_per_instance: int
    extra: Dict[str, str] = field(default_factory=dict)

    def get(self, key: str, default: Optional[str] = None) -> Optional[str]:
        return self.extra.get(key, default)


def build_userdata(ud: UserData) -> str:
    """The user-data string for an instance."""
    from .sessionid import is_session_id

    if not is_session_id(ud.session_id):
        raise FormatError(f"user-data: {ud.session_id!r} is not a session id")
    if not _BUCKET_RE.match(ud.bucket):
        raise FormatError(f"user-data: {ud.bucket!r} is not a bucket name")
    if not re.match(r"^[A-Za-z0-9._-]+$", ud.archive_name):
        raise FormatError(f"user-data: archive name {ud.archive_name!r} has unsafe characters")
    if ud.cores_per_instance < 1:
        raise FormatError("user-data: cores per instance must be at least 1")
    parts = [ud.session_id, ud.bucket, ud.archive_name, str(ud.cores_per_instance)]
    for k, v in sorted(ud.extra.items()):
        if not _KEY_RE.match(k) or not _VALUE_RE.match(str(v)):
            raise FormatError(f"user-data: field {k}={v!r} has unsafe characters")
        parts.append(f"{k}={v}")
    text = ";".join(parts)
    check_size(text)
    return text


def check_size(text: str) -> None:
    size = len(text.encode("utf-8"))
    if size > MAX_USERDATA_BYTES:
        raise FormatError(
            f"user-data is {size} bytes, over EC2's limit of {MAX_USERDATA_BYTES} bytes "
            "(keep the bootstrap script small; ship files in the session archive)"
        )


def parse_userdata(text: str) -> Optional[UserData]:
    """The UserData in ``text`` (legacy string or cloud-init wrapper), or None if it is not ours."""
    text = text.strip()
    if not text:
        return None
    if text.startswith("#!") or text.startswith("#cloud-config"):
        for line in text.splitlines():
            if line.startswith(MARKER):
                return parse_userdata(line[len(MARKER) :])
        return None
    if "\n" in text:
        return None
    parts = text.split(";")
    if len(parts) < 4:
        return None
    from .sessionid import is_session_id

    sid, bucket, archive, cpi_s = parts[:4]
    if not is_session_id(sid) or not re.match(r"^[0-9]+$", cpi_s) or int(cpi_s) < 1:
        return None
    extra = {}
    for p in parts[4:]:
        if "=" not in p:
            return None
        k, v = p.split("=", 1)
        extra[k] = v
    return UserData(sid, bucket, archive, int(cpi_s), extra)


def wrap_cloud_init(ud_string: str, script_body: str) -> str:
    """A ``#!/bin/sh`` user-data script carrying ``ud_string`` on its marker line."""
    text = f"#!/bin/sh\n{MARKER} {ud_string}\n{script_body.rstrip()}\n"
    check_size(text)
    return text


def lease_grace(lease_seconds: float) -> float:
    """Seconds an instance gets after its session lease (``lease_h``) to save and tear down
    before the hard stop: a quarter of the lease, at least 30 s, at most 5 min."""
    return min(300.0, max(30.0, lease_seconds / 4))
