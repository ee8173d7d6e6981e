"""Job status: the vocabulary, its allowed transitions, and the status store's record format.

A job's record is item ``jobN`` in a SimpleDB domain named after the session, or the JSON object
``session_id/status/jobN.json`` in the S3-only store; both hold the same attributes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional

PENDING = "pending"
RUNNING = "running"
WAITFORSAVE = "waitforsave"
SAVING = "saving"
FINISHED = "finished"
FAILED = "failed"
KILLED = "killed"
LOST = "lost"

STATUSES = (PENDING, RUNNING, WAITFORSAVE, SAVING, FINISHED, FAILED, KILLED, LOST)
TERMINAL = frozenset({FINISHED, FAILED, KILLED, LOST})
ACTIVE = frozenset({RUNNING, WAITFORSAVE, SAVING})

# status -> statuses it may move to. failed/killed may be reached from any live state;
# lost is set by the client only, when the instance is gone and the job never ended.
TRANSITIONS: Dict[str, frozenset] = {
    PENDING: frozenset({RUNNING, FAILED, KILLED, LOST}),
    RUNNING: frozenset({WAITFORSAVE, FAILED, KILLED, LOST}),
    WAITFORSAVE: frozenset({SAVING, FAILED, KILLED, LOST}),
    SAVING: frozenset({FINISHED, FAILED, KILLED, LOST}),
    FINISHED: frozenset(),
    FAILED: frozenset(),
    KILLED: frozenset(),
    LOST: frozenset(),
}

RESULTS_SAVED = "saved"
RESULTS_NONE = "none"

KILL_ATTRIBUTE = "kill"
KILL_REQUESTED = "requested"


def can_transition(old: Optional[str], new: str) -> bool:
    """Whether a job may go from ``old`` (None: no record yet) to ``new``."""
    if new not in TRANSITIONS:
        return False
    if old is None:
        return new in (PENDING, FAILED)
    if old == new:
        return True
    return new in TRANSITIONS.get(old, frozenset())


def item_name(jobnr: int) -> str:
    return f"job{jobnr}"


def jobnr_from_item(name: str) -> Optional[int]:
    if name.startswith("job") and name[3:].isdigit():
        return int(name[3:])
    return None


def utcnow_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: Optional[str]) -> Optional[datetime]:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class JobRecord:
    """One job's status record (attribute names as in the paper, plus error and kill)."""

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
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "JobRecord":
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


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


def select_jobs_where(session_id: str, attribute: str, value: str) -> str:
    return (
        f"select * from {quote_name(domain_name(session_id))} "
        f"where {quote_name(attribute)} = {quote_value(value)}"
    )


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


def counts(records: List[JobRecord]) -> Dict[str, int]:
    """Number of jobs per status, in vocabulary order (zeros left out)."""
    c: Dict[str, int] = {}
    for s in STATUSES:
        n = sum(1 for r in records if r.status == s)
        if n:
            c[s] = n
    return c
