"""The synchronous status store: one record per job, in SimpleDB (the paper's) or S3 only.

Both backends hold the ``status.JobRecord`` format; the client's async reader in
``awsac_tui/store/`` reads the same records. Besides the records: the queue-mode claim
(``claim``, ``claimable``), the control read (kill requests and watch flags under control/, one
listing), the heartbeat write, and ``StatusWriter``, the background writer through which the
worker sends every status record so that a slow store never holds up its loop.

Calls are not retried here: botocore retries each one (retry.botocore_config).
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Set, Tuple

from botocore.exceptions import ClientError

from . import s3layout
from .errors import FormatError
from .retry import describe, error_code, requests_made
from .s3objects import EtagCache, delete_batches, deleted_keys
from .status import (
    CLAIM_CONFLICT_CODES,
    DEFAULT_STORE,
    KILL_ATTRIBUTE,
    KILL_REQUESTED,
    PENDING,
    S3_CLAIM_CONFLICT_CODES,
    STORE_S3,
    STORE_SIMPLEDB,
    WATCH_TTL_SECONDS,
    Heartbeat,
    JobRecord,
    claim_expected,
    domain_name,
    item_name,
    jobnr_from_item,
    requeued,
    select_all_jobs,
    select_pending,
    stale_attributes,
    store_kinds_text,
    updated_iso,
)

Log = Optional[Callable[[str], None]]
BATCH_ITEMS = 25  # SimpleDB's limit for BatchPutAttributes
BATCH_WINDOW_SECONDS = 0.5  # how long an end record waits for others to share its call


def _stamped(record: JobRecord) -> JobRecord:
    """The record as written: ``updated`` is the time of this write."""
    return record.with_(updated=updated_iso())


class StatusStore:
    """Interface of a status store. Records are written whole (``put``); the attributes a record
    leaves out (None) keep their stored value, so a client's ``kill`` survives the agent's writes."""

    kind = ""
    _cache: Dict[int, JobRecord]

    def ensure(self) -> None:
        """Create the container (domain) if needed; never deletes anything."""

    def put(self, record: JobRecord) -> JobRecord:
        raise NotImplementedError

    def put_many(self, records: List[JobRecord]) -> None:
        """Write several records (one call where the backend allows); raises on failure."""
        for r in records:
            self.put(r)

    def update(self, jobnr: int, **attrs: Any) -> JobRecord:
        """Change some attributes of the known (or stored) record and write it whole."""
        base = self._cache.get(jobnr) or self.get(jobnr) or JobRecord(jobnr)
        return self.put(base.with_(**attrs))

    def get(self, jobnr: int) -> Optional[JobRecord]:
        raise NotImplementedError

    def read_all(self) -> List[JobRecord]:
        raise NotImplementedError

    def claim(self, record: JobRecord) -> bool:
        """Queue mode: write ``record`` (running, its attempt) only if nobody has claimed that
        attempt of the job; True when this writer got it."""
        raise NotImplementedError

    def claimable(self, n_jobs: int, limit: int = 100) -> List[Tuple[int, int]]:
        """Queue mode: (job number, attempt) pairs that are pending now, at most ``limit``."""
        raise NotImplementedError

    def requeue(self, record: JobRecord) -> JobRecord:
        """Put a lost (or failed) job back to pending as its next attempt (what the client does);
        returns the new record."""
        raise NotImplementedError

    def request_kill(self, jobnr: int) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        """Delete every record of the session and start empty."""
        self.delete_all()
        self.ensure()

    def delete_all(self) -> None:
        raise NotImplementedError


class SimpleDbStore(StatusStore):
    """Domain = session id, item ``jobN``; puts replace attributes; reads use select with paging.

    The client creates the domain (``session.start``); the agent sends CreateDomain only when a
    write finds none (a session started without our client), once.
    """

    kind = STORE_SIMPLEDB

    def __init__(self, sdb: Any, session_id: str, log: Log = None) -> None:
        self.sdb = sdb
        self.session_id = session_id
        self.domain = domain_name(session_id)
        self.log = log
        self._cache: Dict[int, JobRecord] = {}
        self._domain_made = False

    def ensure(self) -> None:
        self.sdb.create_domain(DomainName=self.domain)
        self._domain_made = True

    def _write(self, fn: Callable[[], Any]) -> Any:
        """Run a write; on NoSuchDomain create the domain once and write again."""
        try:
            return fn()
        except ClientError as exc:
            if error_code(exc) != "NoSuchDomain" or self._domain_made:
                raise
            if self.log:
                self.log(f"  SimpleDB domain {self.domain} does not exist; creating it")
            self.ensure()
            return fn()

    @staticmethod
    def _attrs(record: JobRecord) -> List[Dict[str, Any]]:
        return [
            {"Name": k, "Value": v, "Replace": True}
            for k, v in sorted(record.to_attributes().items())
        ]

    def put(self, record: JobRecord) -> JobRecord:
        record = _stamped(record)
        self._write(
            lambda: self.sdb.put_attributes(
                DomainName=self.domain,
                ItemName=item_name(record.jobnr),
                Attributes=self._attrs(record),
            )
        )
        self._cache[record.jobnr] = record
        return record

    def put_many(self, records: List[JobRecord]) -> None:
        for i in range(0, len(records), BATCH_ITEMS):
            # one item goes by BatchPutAttributes too: the agent's writes are one call whatever
            # the writer's timing gathers (PutAttributes stays for claims and the client's marks)
            chunk = [_stamped(r) for r in records[i : i + BATCH_ITEMS]]
            items = [{"Name": item_name(r.jobnr), "Attributes": self._attrs(r)} for r in chunk]
            self._write(
                lambda items=items: self.sdb.batch_put_attributes(
                    DomainName=self.domain, Items=items
                )
            )
            for r in chunk:
                self._cache[r.jobnr] = r

    def get(self, jobnr: int) -> Optional[JobRecord]:
        resp = self.sdb.get_attributes(
            DomainName=self.domain, ItemName=item_name(jobnr), ConsistentRead=True
        )
        attrs = resp.get("Attributes") or []
        if not attrs:
            return None
        return JobRecord.from_attributes(attrs, item_name(jobnr))

    def _select(self, expression: str) -> List[Dict[str, Any]]:
        pages = self.sdb.get_paginator("select").paginate(
            SelectExpression=expression, ConsistentRead=True
        )
        return [item for page in pages for item in page.get("Items") or []]

    def read_all(self) -> List[JobRecord]:
        out = []
        for item in self._select(select_all_jobs(self.session_id)):
            if jobnr_from_item(item["Name"]) is None:
                continue
            out.append(JobRecord.from_attributes(item.get("Attributes") or [], item["Name"]))
        return sorted(out, key=lambda r: r.jobnr)

    def claim(self, record: JobRecord) -> bool:
        record = _stamped(record)
        try:
            self._write(
                lambda: self.sdb.put_attributes(
                    DomainName=self.domain,
                    ItemName=item_name(record.jobnr),
                    Attributes=self._attrs(record),
                    Expected=claim_expected(),
                )
            )
        except ClientError as exc:
            if error_code(exc) not in CLAIM_CONFLICT_CODES:
                raise
            if (requests_made(exc) or 1) > 1:
                # a retried claim whose first request went through answers "taken" to its owner
                current = self.get(record.jobnr)
                if _owned(current, record):
                    self._cache[record.jobnr] = record
                    return True
            return False
        self._cache[record.jobnr] = record
        return True

    def claimable(self, n_jobs: int, limit: int = 100) -> List[Tuple[int, int]]:
        resp = self.sdb.select(
            SelectExpression=select_pending(self.session_id, limit), ConsistentRead=True
        )
        out = []
        for item in resp.get("Items") or []:
            n = jobnr_from_item(item["Name"])
            if n is None or n > n_jobs:
                continue
            attrs = {a["Name"]: a["Value"] for a in item.get("Attributes") or []}
            out.append((n, JobRecord.from_attributes({"jobnr": n, **attrs}).attempt))
        return out

    def requeue(self, record: JobRecord) -> JobRecord:
        new = requeued(record)
        stale = stale_attributes(record, new)
        if stale:
            self.sdb.delete_attributes(
                DomainName=self.domain,
                ItemName=item_name(record.jobnr),
                Attributes=[{"Name": k, "Value": v} for k, v in stale.items()],
            )
        return self.put(new)

    def request_kill(self, jobnr: int) -> None:
        """The client's kill request: the attribute and its mirror under control/ (needs ``s3``)."""
        self._write(
            lambda: self.sdb.put_attributes(
                DomainName=self.domain,
                ItemName=item_name(jobnr),
                Attributes=[{"Name": KILL_ATTRIBUTE, "Value": KILL_REQUESTED, "Replace": True}],
            )
        )

    def delete_all(self) -> None:
        try:
            self.sdb.delete_domain(DomainName=self.domain)
        except ClientError as exc:
            if error_code(exc) != "NoSuchDomain":
                raise
        self._cache.clear()
        self._domain_made = False


def _owned(current: Optional[JobRecord], mine: JobRecord) -> bool:
    return (
        current is not None
        and current.instance_id == mine.instance_id
        and current.attempt == mine.attempt
        and current.status != PENDING
    )


class S3Store(StatusStore):
    """One JSON object per job under ``session_id/status/``, written whole; kills under ``control/``.

    Queue mode claims are objects ``claims/job_N_attempt_A`` created with ``If-None-Match: *``.
    """

    kind = STORE_S3

    def __init__(self, s3: Any, bucket: str, session_id: str, log: Log = None) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.session_id = session_id
        self.log = log
        self._cache: Dict[int, JobRecord] = {}
        # read_all fetches only the objects whose ETag changed since the read before
        self._seen: EtagCache[JobRecord] = EtagCache()
        self.fetches = 0

    def put(self, record: JobRecord) -> JobRecord:
        record = _stamped(record)
        key = s3layout.status_key(self.session_id, record.jobnr)
        self.s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=record.to_json().encode("utf-8"),
            ContentType="application/json",
        )
        self._cache[record.jobnr] = record
        return record

    def _get_object(self, key: str) -> Optional[bytes]:
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise

    def get(self, jobnr: int) -> Optional[JobRecord]:
        body = self._get_object(s3layout.status_key(self.session_id, jobnr))
        if body is None:
            return None
        return self._parse(body, jobnr)

    def _parse(self, body: bytes, jobnr: int) -> JobRecord:
        try:
            return JobRecord.from_json(body.decode("utf-8"))
        except (ValueError, TypeError) as exc:
            raise FormatError(
                f"status object {s3layout.status_key(self.session_id, jobnr)} is not a job record: {exc}"
            ) from exc

    def _list(self, prefix: str) -> List[Dict[str, Any]]:
        out: List[Dict[str, Any]] = []
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            out.extend(page.get("Contents") or [])
        return out

    def read_all(self) -> List[JobRecord]:
        """Every record: one listing, then only the objects whose ETag changed since last time."""
        etags: Dict[str, str] = {}
        jobnrs: Dict[str, int] = {}
        for obj in self._list(s3layout.status_prefix(self.session_id)):
            kind, n = s3layout.classify(obj["Key"])
            if kind == "status" and n is not None:
                etags[obj["Key"]], jobnrs[obj["Key"]] = obj.get("ETag", ""), n
        stale, _ = self._seen.sync(etags.items())
        for key in stale:
            body = self._get_object(key)
            self.fetches += 1
            if body is None:  # deleted since the listing
                self._seen.drop(key)
            else:
                self._seen.put(key, etags[key], self._parse(body, jobnrs[key]))
        return sorted(self._seen.values(), key=lambda r: r.jobnr)

    def claim(self, record: JobRecord) -> bool:
        key = s3layout.claim_key(self.session_id, record.jobnr, record.attempt)
        body = json.dumps(
            {
                "instance_id": record.instance_id,
                "launchindex": record.launchindex,
                "time": updated_iso(),
            }
        ).encode()
        try:
            put_if_absent(self.s3, self.bucket, key, body)
        except ClientError as exc:
            if error_code(exc) not in S3_CLAIM_CONFLICT_CODES:
                raise
            if (requests_made(exc) or 1) > 1:
                data = self._get_object(key)
                owner = json.loads(data.decode()).get("instance_id") if data else None
                if owner and owner == record.instance_id:
                    self.put(record)
                    return True
            return False
        self.put(record)
        return True

    def claimable(self, n_jobs: int, limit: int = 100) -> List[Tuple[int, int]]:
        claimed: Set[Tuple[int, int]] = set()
        for obj in self._list(s3layout.claims_prefix(self.session_id)):
            parsed = s3layout.parse_attempt_key(obj["Key"])
            if parsed:
                claimed.add(parsed)
        first_taken = {n for n, a in claimed if a == 1}
        out = [(n, 1) for n in range(1, n_jobs + 1) if n not in first_taken]
        for obj in self._list(s3layout.queue_prefix(self.session_id)):
            parsed = s3layout.parse_attempt_key(obj["Key"])
            if parsed and parsed not in claimed and parsed[0] <= n_jobs:
                out.append(parsed)
        return out[:limit] if len(out) <= limit else random.sample(out, limit)

    def requeue(self, record: JobRecord) -> JobRecord:
        new = self.put(requeued(record))
        self.s3.put_object(
            Bucket=self.bucket,
            Key=s3layout.requeue_key(self.session_id, new.jobnr, new.attempt),
            Body=b"",
        )
        self.s3.delete_object(Bucket=self.bucket, Key=s3layout.kill_key(self.session_id, new.jobnr))
        return new

    def request_kill(self, jobnr: int) -> None:
        request_kill_object(self.s3, self.bucket, self.session_id, jobnr)

    def delete_all(self) -> None:
        keys = [
            o["Key"]
            for p in (
                s3layout.status_prefix(self.session_id),
                s3layout.control_prefix(self.session_id),
                s3layout.claims_prefix(self.session_id),
                s3layout.queue_prefix(self.session_id),
            )
            for o in self._list(p)
        ]
        for delete in delete_batches(keys):  # S3 names the keys it kept in Errors: they raise
            deleted_keys(self.bucket, self.s3.delete_objects(Bucket=self.bucket, Delete=delete))
        self._cache.clear()
        self._seen.clear()


def put_if_absent(s3: Any, bucket: str, key: str, body: bytes) -> None:
    """PutObject with ``If-None-Match: *``: S3 answers 412 when the key exists already.

    botocore learnt the parameter in 2024; older ones (Debian 12's) get the header from a hook.
    """
    members = s3.meta.service_model.operation_model("PutObject").input_shape.members
    if "IfNoneMatch" in members:
        s3.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
        return
    if not getattr(s3.meta, "_awsac_if_none_match", False):

        def add_header(request: Any, **kwargs: Any) -> None:
            if "/" + s3layout.CLAIMS_PREFIX in request.url:
                request.headers["If-None-Match"] = "*"

        s3.meta.events.register("before-sign.s3.PutObject", add_header)
        s3.meta._awsac_if_none_match = True
    s3.put_object(Bucket=bucket, Key=key, Body=body)


def make_store(
    kind: Optional[str], clients: Any, bucket: str, session_id: str, log: Log = None
) -> StatusStore:
    """The store named by user-data ``store=`` (default simpledb); ``clients`` has .sdb and .s3."""
    kind = (kind or DEFAULT_STORE).lower()
    if kind == STORE_SIMPLEDB:
        return SimpleDbStore(clients.sdb, session_id, log)
    if kind == STORE_S3:
        return S3Store(clients.s3, bucket, session_id, log)
    raise FormatError(f"user-data: store={kind!r} is not a status store (use {store_kinds_text()})")


def record_dict(record: JobRecord) -> Dict[str, Any]:
    """A record as a plain dict (for logs and tests)."""
    return json.loads(record.to_json())


# ---- control/ and heartbeat/ (S3, for both store kinds) ------------------------------------------


def request_kill_object(s3: Any, bucket: str, session_id: str, jobnr: int) -> None:
    """The kill request under control/ (what the agent reads, whichever the store)."""
    s3.put_object(
        Bucket=bucket,
        Key=s3layout.kill_key(session_id, jobnr),
        Body=f"{KILL_REQUESTED} {updated_iso()}\n".encode(),
    )


@dataclass(frozen=True)
class Controls:
    """What one read of control/ found: kill requests and jobs whose live log someone watches."""

    kills: FrozenSet[int] = frozenset()
    watched: FrozenSet[int] = frozenset()
    read_at: Optional[datetime] = None  # the server's time of the read (its Date header)


def read_controls(s3: Any, bucket: str, session_id: str) -> Controls:
    """One ListObjectsV2 of ``control/`` (more pages only past 1,000 objects)."""
    kills: Set[int] = set()
    watch_times: Dict[int, datetime] = {}
    server_time: Optional[datetime] = None
    token: Optional[str] = None
    while True:
        kw: Dict[str, Any] = {"Bucket": bucket, "Prefix": s3layout.control_prefix(session_id)}
        if token:
            kw["ContinuationToken"] = token
        resp = s3.list_objects_v2(**kw)
        date = (resp.get("ResponseMetadata", {}).get("HTTPHeaders") or {}).get("date")
        if date:
            try:
                server_time = parsedate_to_datetime(date)
            except (TypeError, ValueError):
                pass
        for obj in resp.get("Contents") or []:
            parsed = s3layout.parse_control_key(obj["Key"])
            if parsed is None:
                continue
            what, n = parsed
            if what == "kill":
                kills.add(n)
            elif isinstance(obj.get("LastModified"), datetime):
                watch_times[n] = obj["LastModified"]
        token = resp.get("NextContinuationToken")
        if not resp.get("IsTruncated") or not token:
            break
    now = server_time or datetime.now(timezone.utc)
    watched = {n for n, t in watch_times.items() if (now - t).total_seconds() < WATCH_TTL_SECONDS}
    return Controls(frozenset(kills), frozenset(watched), server_time)


def write_heartbeat(s3: Any, bucket: str, session_id: str, beat: Heartbeat) -> None:
    s3.put_object(
        Bucket=bucket,
        Key=s3layout.heartbeat_key(session_id, beat.instance_id),
        Body=beat.to_json().encode(),
        ContentType="application/json",
    )


# ---- the background writer --------------------------------------------------------------------


@dataclass
class _Due:
    record: JobRecord
    due: float
    failures: int = 0


@dataclass
class WriterStats:
    """What the writer did: status writes that reached the store, per job, and the failures."""

    writes: Dict[int, int] = field(default_factory=dict)
    calls: int = 0  # store calls (a SimpleDB batch of several records is one)
    failed_calls: int = 0
    requests_per_failed_call: List[int] = field(default_factory=list)

    @property
    def records_written(self) -> int:
        return sum(self.writes.values())


class StatusWriter:
    """Sends status records from a thread of its own: ``submit`` never blocks.

    It keeps the newest record per job. A record is written once it is ``coalesce`` seconds old
    (a newer one for the same job replaces it meanwhile, so a quick save never shows as a write
    of ``saving``); a terminal one after ``BATCH_WINDOW_SECONDS`` (so that the jobs of an instance
    that end together share a call), an urgent one at once. Records due together go out in one
    call (SimpleDB BatchPutAttributes, 25 items). A write that fails after botocore's own retries is
    tried again after ``retry_seconds`` (doubling up to 30 s), with the newest record then known;
    the worker's loop never waits for any of it.
    """

    def __init__(
        self,
        store: StatusStore,
        log: Log = None,
        coalesce: float = 2.0,
        retry_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.log = log
        self.coalesce = coalesce
        self.retry_seconds = retry_seconds
        self.clock = clock
        self.stats = WriterStats()
        self._queue: Dict[int, _Due] = {}
        self._busy: Set[int] = set()
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="status-writer", daemon=True)
        self._thread.start()

    def submit(self, record: JobRecord, urgent: bool = False) -> None:
        now = self.clock()
        if urgent:
            due = now
        elif record.terminal:
            due = now + min(self.coalesce, BATCH_WINDOW_SECONDS)
        else:
            due = now + self.coalesce
        with self._cond:
            old = self._queue.get(record.jobnr)
            if old is not None:
                old.record, old.due = record, min(old.due, due)
            else:
                self._queue[record.jobnr] = _Due(record, due)
            self._cond.notify_all()

    @property
    def unsynced(self) -> List[int]:
        """Jobs whose newest record has not reached the store yet."""
        with self._cond:
            return sorted(set(self._queue) | self._busy)

    def flush(self, timeout: float) -> bool:
        """Make everything due now and wait up to ``timeout`` s until it is written; True if so."""
        deadline = time.monotonic() + timeout
        with self._cond:
            now = self.clock()
            for d in self._queue.values():
                d.due = min(d.due, now)
            self._cond.notify_all()
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.5))
        return True

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout=5)

    def _take_due(self) -> List[_Due]:
        now = self.clock()
        due = sorted((d for d in self._queue.values() if d.due <= now), key=lambda d: d.due)
        batch = due[:BATCH_ITEMS]
        for d in batch:
            del self._queue[d.record.jobnr]
            self._busy.add(d.record.jobnr)
        return batch

    def _run(self) -> None:
        while True:
            with self._cond:
                batch = self._take_due()
                while not batch:
                    if self._stop:
                        return
                    nxt = min((d.due for d in self._queue.values()), default=None)
                    wait = 0.5 if nxt is None else max(0.01, min(0.5, nxt - self.clock()))
                    self._cond.wait(wait)
                    batch = self._take_due()
            self._write(batch)

    def _write(self, batch: List[_Due]) -> None:
        records = [d.record for d in batch]
        retried = {d.record.jobnr: d.failures for d in batch if d.failures}
        try:
            self.store.put_many(records)
        except Exception as exc:  # noqa: BLE001 - written again later; the worker goes on
            self._failed(batch, exc)
            return
        with self._cond:
            self.stats.calls += 1
            for r in records:
                self.stats.writes[r.jobnr] = self.stats.writes.get(r.jobnr, 0) + 1
                self._busy.discard(r.jobnr)
            self._cond.notify_all()
        if self.log:
            for r in records:
                extra = f" ({r.error})" if r.error else ""
                if r.jobnr in retried:
                    extra += f"; written after earlier failures ({retried[r.jobnr]})"
                self.log(f"  status job{r.jobnr}: {r.status} (attempt {r.attempt}){extra}")

    def _failed(self, batch: List[_Due], exc: BaseException) -> None:
        n = requests_made(exc)
        with self._cond:
            self.stats.calls += 1
            self.stats.failed_calls += 1
            if n is not None:
                self.stats.requests_per_failed_call.append(n)
            now = self.clock()
            for d in batch:
                jobnr = d.record.jobnr
                self._busy.discard(jobnr)
                wait = min(30.0, self.retry_seconds * 2**d.failures)
                newer = self._queue.get(jobnr)
                if newer is not None:  # a newer record came meanwhile: it goes next
                    newer.failures = d.failures + 1
                    newer.due = max(newer.due, now + wait)
                else:
                    self._queue[jobnr] = _Due(d.record, now + wait, d.failures + 1)
            self._cond.notify_all()
        if self.log:
            jobs = ", ".join(f"job{d.record.jobnr}" for d in batch)
            after = f" after {n} request(s)" if n is not None else ""
            self.log(
                f"  status {jobs}: write failed{after} ({describe(exc)}); "
                "the newest record is sent again later"
            )

    def summary(self) -> str:
        s = self.stats
        jobs = len(s.writes)
        per_job = s.records_written / jobs if jobs else 0.0
        failed = (
            f"; {s.failed_calls} failed, requests each: {s.requests_per_failed_call}"
            if s.failed_calls
            else ""
        )
        return (
            f"status writes: {s.records_written} records for {jobs} jobs ({per_job:.2f} per job) "
            f"in {s.calls} calls{failed}"
        )
