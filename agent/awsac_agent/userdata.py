"""User-data: the contract between client and agent.

The legacy string ``session_id;bucket;archive_name;cores_per_instance`` (the paper's) may be
followed by optional ``;key=value`` fields (our extension, every key in ``KEYS``): status store
kind, job and session time limits, and how the instance picks its jobs (``assignment``, ``jobs``,
``max_attempts``, ``spot``, ``reservation``, ``instances``). Without them the string means what
the paper's did: the static rule over jobs.cfg, attempt 1. The agent also accepts a ``#!``
cloud-init script that carries the same string on a line ``# awsac-userdata: <string>``, for stock
images without the agent baked in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional

from .assignment import ASSIGNMENTS, STATIC
from .errors import FormatError

MAX_USERDATA_BYTES = 16 * 1024
MARKER = "# awsac-userdata:"
_VALUE_RE = re.compile(r"^[A-Za-z0-9._:/+=,-]*$")

# The optional fields, all of them (one place). Values are plain text without ';'.
K_STORE = "store"  # status store kind: simpledb (default) | s3
K_MAX_JOB_MIN = "max_job_min"  # a job running longer is killed (minutes)
K_LEASE_H = "lease_h"  # the session lease: instances end themselves after it (hours)
K_KEEP_FAIL_MIN = "keep_fail_min"  # keep a failed instance that long for debugging (minutes)
K_ASSIGNMENT = "assignment"  # static (default: the paper's rule) | queue (claim pending jobs)
K_JOBS = "jobs"  # static: run these jobs (a retry reservation) instead of the rule; "3-7,12"
K_MAX_ATTEMPTS = "max_attempts"  # queue: claim no attempt above it (default status.DEFAULT_...)
K_SPOT = "spot"  # 1: the client asked for spot capacity (the agent also asks the metadata)
K_RESERVATION = "reservation"  # which RunInstances of the session launched it (1, 2, ...)
K_INSTANCES = "instances"  # instances of the session (the agents' polling slows as it grows)
KEYS = (
    K_STORE,
    K_MAX_JOB_MIN,
    K_LEASE_H,
    K_KEEP_FAIL_MIN,
    K_ASSIGNMENT,
    K_JOBS,
    K_MAX_ATTEMPTS,
    K_SPOT,
    K_RESERVATION,
    K_INSTANCES,
)
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

    def _int(self, key: str, default: Optional[int]) -> Optional[int]:
        text = self.extra.get(key)
        if text in (None, ""):
            return default
        if not str(text).isdigit() or int(text) < 1:
            raise FormatError(f"user-data: {key}={text!r} must be a whole number of at least 1")
        return int(text)

    @property
    def assignment(self) -> str:
        """``static`` (the paper's rule, or the ``jobs`` list) or ``queue``."""
        value = self.extra.get(K_ASSIGNMENT) or STATIC
        if value not in ASSIGNMENTS:
            raise FormatError(
                f"user-data: {K_ASSIGNMENT}={value!r} is not a job assignment "
                f"(use {' or '.join(ASSIGNMENTS)})"
            )
        return value

    @property
    def jobs(self) -> Optional[List[int]]:
        """The jobs named for this reservation (a retry), or None for the assignment rule."""
        text = self.extra.get(K_JOBS)
        return parse_job_list(text) if text else None

    @property
    def max_attempts(self) -> Optional[int]:
        return self._int(K_MAX_ATTEMPTS, None)

    @property
    def spot(self) -> bool:
        return self.extra.get(K_SPOT, "0") not in ("", "0", "false", "no")

    @property
    def reservation(self) -> int:
        value = self._int(K_RESERVATION, 1)
        return 1 if value is None else value

    @property
    def instances(self) -> Optional[int]:
        return self._int(K_INSTANCES, None)


def extras(
    *,
    store: Optional[str] = None,
    max_job_min: Optional[float] = None,
    lease_h: Optional[float] = None,
    keep_fail_min: Optional[float] = None,
    assignment: Optional[str] = None,
    jobs: Optional[Iterable[int]] = None,
    max_attempts: Optional[int] = None,
    spot: bool = False,
    reservation: Optional[int] = None,
    instances: Optional[int] = None,
) -> Dict[str, str]:
    """The optional fields for a session's user-data (only those that differ from the defaults)."""
    out: Dict[str, str] = {}
    if store:
        out[K_STORE] = store
    for key, minutes in ((K_MAX_JOB_MIN, max_job_min), (K_LEASE_H, lease_h)):
        if minutes:
            out[key] = f"{minutes:g}"
    if keep_fail_min:
        out[K_KEEP_FAIL_MIN] = f"{keep_fail_min:g}"
    if assignment and assignment != STATIC:
        out[K_ASSIGNMENT] = assignment
    if jobs is not None:
        out[K_JOBS] = format_job_list(jobs)
    if max_attempts is not None:
        out[K_MAX_ATTEMPTS] = str(int(max_attempts))
    if spot:
        out[K_SPOT] = "1"
    if reservation is not None and reservation > 1:
        out[K_RESERVATION] = str(int(reservation))
    if instances is not None:
        out[K_INSTANCES] = str(int(instances))
    return out


def format_job_list(jobnrs: Iterable[int]) -> str:
    """Job numbers as a compact list: ``[3, 4, 5, 7, 12, 13]`` -> ``"3-5,7,12-13"``."""
    nrs = sorted(set(int(n) for n in jobnrs))
    if not nrs or nrs[0] < 1:
        raise FormatError("user-data: a job list needs job numbers of at least 1")
    parts: List[str] = []
    start = prev = nrs[0]
    for n in nrs[1:] + [0]:
        if n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = n
    return ",".join(parts)


def parse_job_list(text: str) -> List[int]:
    """The job numbers of a compact list (``"3-5,7"`` -> ``[3, 4, 5, 7]``), sorted, unique."""
    out: List[int] = []
    for part in text.split(","):
        a, sep, b = part.partition("-")
        if not a.isdigit() or (sep and not b.isdigit()) or int(a) < 1:
            raise FormatError(
                f"user-data: {K_JOBS}={text!r}: {part!r} is not a job number or range (e.g. 3-7,12)"
            )
        first, last = int(a), int(b) if sep else int(a)
        if last < first:
            raise FormatError(f"user-data: {K_JOBS}={text!r}: range {part!r} runs backwards")
        out.extend(range(first, last + 1))
    return sorted(set(out))


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
    # the typed fields must read back (a bad value is the builder's error, not the instance's)
    ud.assignment, ud.jobs, ud.max_attempts, ud.reservation, ud.instances  # noqa: B018
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
