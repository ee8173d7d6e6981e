"""Job status: the vocabulary, its order and counts, and the status store's record format.

A job's record is item ``jobN`` in a SimpleDB domain named after the session, or the JSON object
``session_id/status/jobN.json`` in the S3-only store; both hold the same attributes. This module
also owns the other records that client and agent share: attempts (``attempt``, ``history``), the
causes of ``lost`` in user words, the per-instance heartbeat, the live-log watch flag, the
queue-mode claim, and the intervals that go with them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

PENDING = "pending"
RUNNING = "running"
WAITFORSAVE = "waitforsave"
SAVING = "saving"
FINISHED = "finished"
FAILED = "failed"
KILLED = "killed"
LOST = "lost"

# A job's path is pending -> running -> waitforsave -> saving -> finished; failed and killed may
# end it from any live state, and so may lost: the agent sets it when its instance goes away under
# the job (SIGTERM at shutdown, a spot notice), the client when the instance is gone and the job
# never ended. A lost job (a failed one with retry_failed) goes back to pending with its attempt
# raised (``requeued``), up to max_attempts. The store shows a subsequence of the path, since the
# agent coalesces writes (a job that starts at once has no pending write, a quick save no
# waitforsave/saving write).
# The vocabulary, in the one order counts and status bars show it: the path backwards from
# finished (the furthest along first), then the other ends.
STATUSES = (FINISHED, SAVING, WAITFORSAVE, RUNNING, PENDING, FAILED, KILLED, LOST)
TERMINAL = frozenset({FINISHED, FAILED, KILLED, LOST})
ACTIVE = frozenset({RUNNING, WAITFORSAVE, SAVING})

# Statuses a job may be retried from (failed only with the session's retry_failed = true).
RETRYABLE = frozenset({LOST, FAILED})
DEFAULT_MAX_ATTEMPTS = 3

RESULTS_SAVED = "saved"
RESULTS_NONE = "none"

KILL_ATTRIBUTE = "kill"
KILL_REQUESTED = "requested"

# The status store's kinds, each with the name a user reads: SimpleDB (the paper's, the default)
# and S3 only (portable: a cloud with EC2 and S3 alone). Spec, user-data, both stores and the
# TUI take them from here.
STORE_SIMPLEDB = "simpledb"
STORE_S3 = "s3"
STORE_KINDS: Dict[str, str] = {STORE_SIMPLEDB: "SimpleDB", STORE_S3: "S3 only"}
DEFAULT_STORE = STORE_SIMPLEDB


def store_kinds_text(quote: str = "") -> str:
    """The kinds for a message: ``simpledb or s3`` (each in ``quote``)."""
    return " or ".join(f"{quote}{kind}{quote}" for kind in STORE_KINDS)


def item_name(jobnr: int) -> str:
    return f"job{jobnr}"


def jobnr_from_item(name: str) -> Optional[int]:
    if name.startswith("job") and name[3:].isdigit():
        return int(name[3:])
    return None


def utcnow_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def updated_iso(now: Optional[datetime] = None) -> str:
    """The ``updated`` stamp of a status write: ISO UTC with milliseconds, always the same width,
    so that SimpleDB's string comparison (``where updated > '...'``) orders it by time."""
    now = now or datetime.now(timezone.utc)
    return now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{now.microsecond // 1000:03d}Z"
    )


def hhmmss(text_or_time: Any) -> str:
    """``HH:MM:SSZ`` of an ISO time (or datetime), for causes in user words."""
    dt = text_or_time if isinstance(text_or_time, datetime) else parse_iso(text_or_time)
    if dt is None:
        return str(text_or_time)
    return dt.astimezone(timezone.utc).strftime("%H:%M:%SZ")


def parse_iso(text: Optional[str]) -> Optional[datetime]:
    if not text:
        return None
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class JobRecord:
    """One job's status record (attribute names as in the paper, plus our additions).

    Ours: ``error`` (the cause of failed/killed/lost, in user words), ``kill`` (set by the client),
    ``results``, ``attempt`` (1-based; which try of the job this record describes), ``updated``
    (``updated_iso()``, set by the store with every write: the incremental refresh reads
    ``where updated > ...``) and ``history`` (earlier attempts, see ``history_of``).
    """

    jobnr: int
    status: str = PENDING
    instance_id: Optional[str] = None
    launchindex: Optional[int] = None
    shellscript: Optional[str] = None
    snapshot: Optional[str] = None
    runstarttime: Optional[str] = None
    runendtime: Optional[str] = None
    returncode: Optional[int] = None
    savestarttime: Optional[str] = None
    saveendtime: Optional[str] = None
    error: Optional[str] = None
    kill: Optional[str] = None
    # "saved" when the job's results.tar.bz2 was uploaded, "none" when the job made none.
    results: Optional[str] = None
    attempt: int = 1
    updated: Optional[str] = None
    history: Optional[str] = None  # JSON list of earlier attempts (HISTORY_FIELDS each)

    def with_(self, **changes: Any) -> "JobRecord":
        return replace(self, **changes)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def to_attributes(self) -> Dict[str, str]:
        """SimpleDB attributes (all strings; None values are left out)."""
        out = {}
        for k, v in asdict(self).items():
            if v is not None:
                out[k] = str(v)
        return out

    @classmethod
    def from_attributes(cls, attrs: Mapping[str, Any], item: Optional[str] = None) -> "JobRecord":
        """From SimpleDB attributes (a name->value mapping or a list of {Name, Value})."""
        if isinstance(attrs, list):
            attrs = {a["Name"]: a["Value"] for a in attrs}
        known = {f.name for f in fields(cls)}
        data: Dict[str, Any] = {k: v for k, v in attrs.items() if k in known}
        jobnr = data.get("jobnr") or (jobnr_from_item(item) if item else None)
        if jobnr is None:
            raise ValueError(f"status record {item!r} has no job number")
        data["jobnr"] = int(jobnr)
        for k in ("launchindex", "returncode"):
            if data.get(k) not in (None, ""):
                try:
                    data[k] = int(data[k])
                except ValueError:
                    data[k] = None
            else:
                data[k] = None
        data["attempt"] = _attempt(data.get("attempt"))
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "JobRecord":
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        data["attempt"] = _attempt(data.get("attempt"))
        return cls(**data)


def _attempt(value: Any) -> int:
    """An attempt number from a stored value (missing or unreadable: 1, the paper's only try)."""
    try:
        n = int(value)
    except (TypeError, ValueError):
        return 1
    return n if n >= 1 else 1


# ---- attempts: what a retry keeps of the attempts before ----------------------------------------

HISTORY_FIELDS = ("attempt", "status", "instance_id", "runstarttime", "runendtime", "error")
MAX_HISTORY_BYTES = 1024  # SimpleDB's limit for one attribute value


def history_of(record: JobRecord) -> List[Dict[str, Any]]:
    """The earlier attempts of a job, oldest first (each a dict of HISTORY_FIELDS)."""
    if not record.history:
        return []
    try:
        data = json.loads(record.history)
    except ValueError:
        return []
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


def _history_text(entries: List[Dict[str, Any]]) -> str:
    """JSON of ``entries`` within MAX_HISTORY_BYTES: long causes are cut first, then the oldest
    attempts dropped (the count stays visible through ``attempt``)."""
    entries = [dict(e) for e in entries]
    text = json.dumps(entries, separators=(",", ":"))
    for limit in (200, 80):
        if len(text.encode("utf-8")) <= MAX_HISTORY_BYTES:
            return text
        for e in entries:
            if isinstance(e.get("error"), str) and len(e["error"]) > limit:
                e["error"] = e["error"][: limit - 3] + "..."
        text = json.dumps(entries, separators=(",", ":"))
    while len(text.encode("utf-8")) > MAX_HISTORY_BYTES and len(entries) > 1:
        entries.pop(0)
        text = json.dumps(entries, separators=(",", ":"))
    return text


def requeued(record: JobRecord, now: Optional[datetime] = None) -> JobRecord:
    """The pending record of the job's next attempt (what a retry or the queue's re-queue writes).

    Keeps the job's identity (number, script, snapshot), raises ``attempt``, appends the ended
    attempt to ``history``; everything that belonged to the ended attempt is cleared (on SimpleDB
    delete ``stale_attributes(old, new)`` with the put, and the kill request under control/).
    """
    entry = {k: getattr(record, k) for k in HISTORY_FIELDS if getattr(record, k) is not None}
    return JobRecord(
        jobnr=record.jobnr,
        status=PENDING,
        shellscript=record.shellscript,
        snapshot=record.snapshot,
        attempt=record.attempt + 1,
        updated=updated_iso(now),
        history=_history_text(history_of(record) + [entry]),
    )


def stale_attributes(old: JobRecord, new: JobRecord) -> Dict[str, str]:
    """Attributes to delete on SimpleDB when ``new`` replaces ``old`` (a put keeps the others):
    those ``old`` has and ``new`` leaves out, with their values (botocore's DeleteAttributes
    wants them). Read ``old`` consistently first, so that a ``kill`` is among them."""
    keep = set(new.to_attributes())
    return {k: v for k, v in sorted(old.to_attributes().items()) if k not in keep}


def may_retry(record: JobRecord, max_attempts: int, retry_failed: bool = False) -> bool:
    """Whether the job may get another attempt: lost (or failed, with retry_failed), under the cap."""
    if record.status == LOST or (retry_failed and record.status == FAILED):
        return record.attempt < max_attempts
    return False


# ---- why a job was lost, in user words (agent and client say it the same way) ------------------


def cause_terminated(instance_id: str, state_reason: Optional[str] = None) -> str:
    """The instance was shut down or terminated by someone else while the job ran."""
    reason = f" (state reason: {state_reason})" if state_reason else ""
    return f"instance {instance_id} terminated from outside while the job ran{reason}"


def cause_stopped(instance_id: str, state_reason: Optional[str] = None) -> str:
    """The instance was stopped by someone else while the job ran (its processes are gone)."""
    reason = f" (state reason: {state_reason})" if state_reason else ""
    return f"instance {instance_id} stopped from outside while the job ran{reason}"


def cause_never_started(instance_id: str, state: str, state_reason: Optional[str] = None) -> str:
    """The job's instance went before the job started (static assignment: nobody else runs it)."""
    reason = f" (state reason: {state_reason})" if state_reason else ""
    return f"instance {instance_id} is {state} and the job never started{reason}"


def cause_spot_notice(notice_time: Any, instance_id: Optional[str] = None) -> str:
    """EC2 gave a spot interruption notice (``time`` of spot/instance-action, or when we saw it)."""
    where = f" for instance {instance_id}" if instance_id else ""
    return f"spot interruption notice at {hhmmss(notice_time)}{where}"


def cause_silent(seconds: float, instance_id: str) -> str:
    """No heartbeat for ``seconds`` from the agent of a running instance (set by the client)."""
    return f"agent silent for {seconds:.0f} s on a running instance ({instance_id})"


# ---- heartbeat: one record per instance -------------------------------------------------------

HEARTBEAT_SECONDS = 30.0  # how often each agent writes its heartbeat (AWSAC_HEARTBEAT_SECONDS)
HEARTBEAT_MISSED = 4  # beats missed before the client calls the agent silent (4 x 30 s = 120 s)

# heartbeat ``state``: what the agent is doing
HB_STARTING = "starting"  # volumes, plan
HB_RUNNING = "running"  # running or claiming jobs
HB_DRAINING = "draining"  # starts no new job (rebalance recommendation, lease over)
HB_INTERRUPTED = "interrupted"  # spot notice or SIGTERM: marking its jobs lost and going
HB_TEARDOWN = "teardown"  # all jobs ended; tearing down and terminating itself


@dataclass(frozen=True)
class Heartbeat:
    """An agent's sign of life: the JSON object ``s3layout.heartbeat_key(session, instance)``.

    One per instance (not per job), in S3 for both store kinds: the client reads all of them with
    one ListObjectsV2 of ``heartbeat_prefix`` and judges age by the listing's LastModified (server
    time, so the agent's clock does not matter); the body says what the agent is doing.
    """

    instance_id: str
    launchindex: Optional[int]
    time: str  # updated_iso() of the write
    interval: float  # seconds until the next beat
    state: str = HB_RUNNING
    jobs: Tuple[int, ...] = ()  # job numbers running on the instance
    beat: int = 0  # counts up from 1 with each write

    def to_json(self) -> str:
        data = asdict(self)
        data["jobs"] = list(self.jobs)
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Heartbeat":
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        data["jobs"] = tuple(int(n) for n in data.get("jobs") or ())
        return cls(**data)

    def silent_after(self) -> float:
        """Seconds after this beat's LastModified at which the agent counts as silent."""
        return silent_after(self.interval)


def silent_after(interval: float = HEARTBEAT_SECONDS) -> float:
    return interval * HEARTBEAT_MISSED


# ---- control: kill requests and live-log watch flags, under control/ in S3 -----------------------

# The agent reads both with one ListObjectsV2 of ``s3layout.control_prefix`` per interval (for
# either store kind; the SimpleDB ``kill`` attribute is the client's record of the request).
CONTROL_BASE_SECONDS = 5.0  # AWSAC_POLL_SECONDS overrides it
CONTROL_LISTS_PER_SECOND = 20.0  # what one session's agents may send together


def control_poll_seconds(n_instances: int, base: float = CONTROL_BASE_SECONDS) -> float:
    """Seconds between an agent's control reads: ``base`` up to 100 instances, then growing so that
    the session's agents together list control/ at most CONTROL_LISTS_PER_SECOND times a second
    (1,000 instances: every 50 s)."""
    return max(base, max(1, n_instances) / CONTROL_LISTS_PER_SECOND)


# The live-log watch flag: the log view PUTs ``s3layout.watch_key(session, job)`` (body: the ISO
# time it expires) when it opens and again every WATCH_REFRESH_SECONDS; the agent uploads
# ``live/job_N.log`` only while the object's LastModified is younger than WATCH_TTL_SECONDS
# (judged against the listing's own Date header, so clocks do not matter).
WATCH_TTL_SECONDS = 60.0
WATCH_REFRESH_SECONDS = 20.0


def watch_body(now: Optional[datetime] = None) -> str:
    from datetime import timedelta

    now = now or datetime.now(timezone.utc)
    return updated_iso(now + timedelta(seconds=WATCH_TTL_SECONDS)) + "\n"


# ---- queue mode: claims ----------------------------------------------------------------------


def claim_expected() -> Dict[str, Any]:
    """SimpleDB ``Expected`` of a claim: the PutAttributes that sets a job running succeeds only
    while its status is still pending, so of racing agents exactly one gets it."""
    return {"Name": "status", "Value": PENDING, "Exists": True}


# SimpleDB answers of a lost race (the item changed, or it has no status yet)
CLAIM_CONFLICT_CODES = frozenset({"ConditionalCheckFailed", "AttributeDoesNotExist"})
# S3 answers of a lost race for the claim key: 412, or 409 while another conditional put runs
S3_CLAIM_CONFLICT_CODES = frozenset(
    {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
)


def select_pending(session_id: str, limit: int = 100) -> str:
    """The pending jobs an agent may claim (item names and attempts), at most ``limit``."""
    return (
        f"select {quote_name('attempt')} from {quote_name(domain_name(session_id))} "
        f"where {quote_name('status')} = {quote_value(PENDING)} limit {int(limit)}"
    )


def select_updated_since(session_id: str, since: str) -> str:
    """Job records written at or after ``since`` (an ``updated_iso`` stamp; the incremental read)."""
    return (
        f"select * from {quote_name(domain_name(session_id))} "
        f"where {quote_name('updated')} >= {quote_value(since)} limit 2500"
    )


def domain_name(session_id: str) -> str:
    """SimpleDB domain for a session (session ids only use [A-Za-z0-9_-], which SimpleDB allows)."""
    return session_id


def quote_value(value: str) -> str:
    """A SimpleDB select string literal: single quotes, embedded quotes doubled."""
    return "'" + str(value).replace("'", "''") + "'"


def quote_name(name: str) -> str:
    """A SimpleDB select identifier in backticks, embedded backticks doubled."""
    return "`" + str(name).replace("`", "``") + "`"


def select_all_jobs(session_id: str) -> str:
    """Select expression that reads every job record of a session.

    ``limit 2500`` (SimpleDB's maximum page) instead of the default 100 items: a 1,000-job session
    reads in one page.
    """
    return f"select * from {quote_name(domain_name(session_id))} limit 2500"


def select_kill_requests(session_id: str, jobnrs: List[int]) -> str:
    """Select the job items of ``jobnrs`` whose kill was requested (at most 20, SimpleDB's limit
    for ``in``; an empty list has no valid expression and raises ValueError)."""
    if not jobnrs or len(jobnrs) > 20:
        raise ValueError(f"select_kill_requests needs 1 to 20 job numbers, got {len(jobnrs)}")
    items = ", ".join(quote_value(item_name(n)) for n in jobnrs)
    return (
        f"select {quote_name(KILL_ATTRIBUTE)} from {quote_name(domain_name(session_id))} "
        f"where {quote_name(KILL_ATTRIBUTE)} = {quote_value(KILL_REQUESTED)} "
        f"and itemName() in ({items})"
    )


def count_statuses(statuses: Iterable[str]) -> List[Tuple[str, int]]:
    """(status, number of jobs) for each status that occurs, in ``STATUSES`` order (a status
    outside the vocabulary last). The one count of jobs by status, for every view."""
    counts: Dict[str, int] = {}
    for s in statuses:
        counts[s] = counts.get(s, 0) + 1
    rank = {s: i for i, s in enumerate(STATUSES)}
    return sorted(counts.items(), key=lambda kv: rank.get(kv[0], len(rank)))
