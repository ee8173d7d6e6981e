"""The S3 key layout of a session: everything lives under ``bucket/session_id/``."""

from __future__ import annotations

import re
from typing import Optional, Tuple

DEFAULT_ARCHIVE_NAME = "sessionarchive.tar.bz2"
LIVE_PREFIX = "live/"
CONTROL_PREFIX = "control/"
STATUS_PREFIX = "status/"


def prefix(session_id: str) -> str:
    return f"{session_id}/"


def archive_key(session_id: str, archive_name: str = DEFAULT_ARCHIVE_NAME) -> str:
    return f"{session_id}/{archive_name}"


def results_name(jobnr: int) -> str:
    """File name of a job's results bundle (the key's last part)."""
    return f"results_job_{jobnr}.tar.bz2"


def stdouterr_log_name(jobnr: int) -> str:
    """File name of a job's stdout+stderr log (inside its stdouterr bundle)."""
    return f"stdouterr_job_{jobnr}.log"


def stdouterr_name(jobnr: int) -> str:
    """File name of the bundle holding a job's stdout+stderr log."""
    return f"stdouterr_job_{jobnr}.tar.bz2"


def processjobslog_name(launch_index: int) -> str:
    """File name of the bundle holding an instance's worker log."""
    return f"processjobslog_LI_{launch_index}.tar.bz2"


def results_key(session_id: str, jobnr: int) -> str:
    return f"{session_id}/{results_name(jobnr)}"


def stdouterr_key(session_id: str, jobnr: int) -> str:
    return f"{session_id}/{stdouterr_name(jobnr)}"


def processjobslog_key(session_id: str, launch_index: int) -> str:
    return f"{session_id}/{processjobslog_name(launch_index)}"


def live_log_key(session_id: str, jobnr: int) -> str:
    return f"{session_id}/{LIVE_PREFIX}job_{jobnr}.log"


def kill_key(session_id: str, jobnr: int) -> str:
    return f"{session_id}/{CONTROL_PREFIX}kill_job_{jobnr}"


def control_prefix(session_id: str) -> str:
    return f"{session_id}/{CONTROL_PREFIX}"


def status_prefix(session_id: str) -> str:
    return f"{session_id}/{STATUS_PREFIX}"


def status_key(session_id: str, jobnr: int) -> str:
    return f"{session_id}/{STATUS_PREFIX}job{jobnr}.json"


_JOB_KEY_RE = re.compile(r"(results|stdouterr)_job_(\d+)\.tar\.bz2$")


def classify(key: str) -> Tuple[str, Optional[int]]:
    """What an object under a session prefix is: (kind, job number or launch index)."""
    name = key.split("/", 1)[1] if "/" in key else key
    m = _JOB_KEY_RE.match(name)
    if m:
        return m.group(1), int(m.group(2))
    m = re.match(r"processjobslog_LI_(\d+)\.tar\.bz2$", name)
    if m:
        return "processjobslog", int(m.group(1))
    m = re.match(r"live/job_(\d+)\.log$", name)
    if m:
        return "live", int(m.group(1))
    m = re.match(r"status/job(\d+)\.json$", name)
    if m:
        return "status", int(m.group(1))
    if name.startswith(CONTROL_PREFIX):
        return "control", None
    if name.endswith(".tar.bz2"):
        return "archive", None
    return "other", None
