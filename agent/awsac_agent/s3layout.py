"""The S3 key layout of a session: everything lives under ``bucket/session_id/``.

The paper's names stay at the top (archive, ``results_job_N``, ``stdouterr_job_N``,
``processjobslog_LI_L``); ours live in sub-folders: ``live/``, ``control/`` (kill requests, watch
flags), ``status/`` (S3-only store), ``heartbeat/``, ``attempts/`` (every attempt's outputs),
``reservations/`` (worker logs of later reservations), ``claims/`` and ``queue/`` (queue mode on
the S3-only store).
"""

from __future__ import annotations

import re
from typing import Optional, Tuple

DEFAULT_ARCHIVE_NAME = "sessionarchive.tar.bz2"
LIVE_PREFIX = "live/"
CONTROL_PREFIX = "control/"
STATUS_PREFIX = "status/"
HEARTBEAT_PREFIX = "heartbeat/"
ATTEMPTS_PREFIX = "attempts/"
RESERVATIONS_PREFIX = "reservations/"
CLAIMS_PREFIX = "claims/"
QUEUE_PREFIX = "queue/"
# What ``awsac results`` leaves out by default: the session's bookkeeping, and the per-attempt
# copies (the last attempt's outputs are at the paper's names; earlier ones on request).
BOOKKEEPING_PREFIXES = (
    LIVE_PREFIX,
    CONTROL_PREFIX,
    STATUS_PREFIX,
    HEARTBEAT_PREFIX,
    CLAIMS_PREFIX,
    QUEUE_PREFIX,
    ATTEMPTS_PREFIX,
)


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


def processjobslog_key(session_id: str, launch_index: int, reservation: int = 1) -> str:
    """The worker log of an instance: the paper's name for the session's first reservation;
    a later one (a retry, more queue workers) keeps its own under ``reservations/R/``."""
    if reservation <= 1:
        return f"{session_id}/{processjobslog_name(launch_index)}"
    return f"{session_id}/{RESERVATIONS_PREFIX}{reservation}/{processjobslog_name(launch_index)}"


def attempt_prefix(session_id: str, jobnr: int, attempt: int) -> str:
    """Where attempt ``attempt`` of job ``jobnr`` keeps its outputs (the paper's file names)."""
    return f"{session_id}/{ATTEMPTS_PREFIX}job_{jobnr}/{attempt}/"


def attempts_prefix(session_id: str, jobnr: int) -> str:
    """Every attempt of job ``jobnr`` (list it to show the attempts' outputs)."""
    return f"{session_id}/{ATTEMPTS_PREFIX}job_{jobnr}/"


def attempt_results_key(session_id: str, jobnr: int, attempt: int) -> str:
    """Results of one attempt; the last attempt's are also at ``results_key`` (a server-side copy)."""
    return attempt_prefix(session_id, jobnr, attempt) + results_name(jobnr)


def attempt_stdouterr_key(session_id: str, jobnr: int, attempt: int) -> str:
    """Log bundle of one attempt (a lost attempt's partial log too); the last is also at
    ``stdouterr_key``."""
    return attempt_prefix(session_id, jobnr, attempt) + stdouterr_name(jobnr)


def live_log_key(session_id: str, jobnr: int) -> str:
    return f"{session_id}/{LIVE_PREFIX}job_{jobnr}.log"


def kill_key(session_id: str, jobnr: int) -> str:
    return f"{session_id}/{CONTROL_PREFIX}kill_job_{jobnr}"


def watch_key(session_id: str, jobnr: int) -> str:
    """The live-log watch flag of a job (``status.WATCH_TTL_SECONDS``): set by the log view."""
    return f"{session_id}/{CONTROL_PREFIX}watch_job_{jobnr}"


_CONTROL_RE = re.compile(r"(kill|watch)_job_(\d+)$")


def parse_control_key(key: str) -> Optional[Tuple[str, int]]:
    """``("kill" | "watch", job number)`` of a key under control/, None for anything else."""
    m = _CONTROL_RE.match(key.rsplit("/", 1)[-1])
    return (m.group(1), int(m.group(2))) if m else None


def heartbeat_prefix(session_id: str) -> str:
    return f"{session_id}/{HEARTBEAT_PREFIX}"


def heartbeat_key(session_id: str, instance_id: str) -> str:
    """The heartbeat of one instance (``status.Heartbeat``, JSON)."""
    return f"{session_id}/{HEARTBEAT_PREFIX}{instance_id}.json"


def claims_prefix(session_id: str) -> str:
    return f"{session_id}/{CLAIMS_PREFIX}"


def claim_key(session_id: str, jobnr: int, attempt: int) -> str:
    """Queue mode, S3-only store: the agent that creates this object (PutObject with
    ``If-None-Match: *``) owns attempt ``attempt`` of job ``jobnr``; the others get 412."""
    return f"{session_id}/{CLAIMS_PREFIX}job_{jobnr}_attempt_{attempt}"


def queue_prefix(session_id: str) -> str:
    return f"{session_id}/{QUEUE_PREFIX}"


def requeue_key(session_id: str, jobnr: int, attempt: int) -> str:
    """Queue mode, S3-only store: written by the client when it re-queues a job, so that agents
    see attempt ``attempt`` (>= 2) of job ``jobnr`` as claimable. Attempt 1 of every job of
    jobs.cfg is claimable without one."""
    return f"{session_id}/{QUEUE_PREFIX}job_{jobnr}_attempt_{attempt}"


_ATTEMPT_KEY_RE = re.compile(r"job_(\d+)_attempt_(\d+)$")


def parse_attempt_key(key: str) -> Optional[Tuple[int, int]]:
    """(job number, attempt) of a claim or requeue key, None for anything else."""
    m = _ATTEMPT_KEY_RE.match(key.rsplit("/", 1)[-1])
    return (int(m.group(1)), int(m.group(2))) if m else None


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
    m = re.match(r"attempts/job_(\d+)/\d+/", name)
    if m:
        return "attempt", int(m.group(1))
    if name.startswith(HEARTBEAT_PREFIX):
        return "heartbeat", None
    if name.startswith(RESERVATIONS_PREFIX):
        m = re.match(r"reservations/\d+/processjobslog_LI_(\d+)\.tar\.bz2$", name)
        return "processjobslog", int(m.group(1)) if m else None
    for kind, pre in (("claim", CLAIMS_PREFIX), ("queue", QUEUE_PREFIX)):
        if name.startswith(pre):
            parsed = parse_attempt_key(name)
            return kind, parsed[0] if parsed else None
    if name.startswith(CONTROL_PREFIX):
        return "control", None
    if name.endswith(".tar.bz2"):
        return "archive", None
    return "other", None
