"""The synchronous status store: one record per job, in SimpleDB (the paper's) or S3 only.

Both backends hold the ``status.JobRecord`` format; the client's async reader in
``awsac_tui/store/`` reads the same records.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple

from botocore.exceptions import ClientError

from . import s3layout
from .errors import FormatError
from .retry import retry
from .status import (
    KILL_ATTRIBUTE,
    KILL_REQUESTED,
    JobRecord,
    domain_name,
    item_name,
    jobnr_from_item,
    select_all_jobs,
    select_kill_requests,
)

Log = Optional[Callable[[str], None]]
STORE_KINDS = ("simpledb", "s3")


class StatusStore:
    """Interface of a status store (records are whole JobRecords; updates change some attributes)."""

    kind = ""

    def ensure(self) -> None:
        """Create the container (domain) if needed; never deletes anything."""

    def put(self, record: JobRecord) -> None:
        raise NotImplementedError

    def update(self, jobnr: int, **attrs: Any) -> JobRecord:
        raise NotImplementedError

    def get(self, jobnr: int) -> Optional[JobRecord]:
        raise NotImplementedError

    def read_all(self) -> List[JobRecord]:
        raise NotImplementedError

    def kill_requests(self, jobnrs: Iterable[int]) -> Set[int]:
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
    """Domain = session id, item ``jobN``; puts replace attributes; reads use select with paging."""

    kind = "simpledb"

    def __init__(self, sdb: Any, session_id: str, log: Log = None) -> None:
        self.sdb = sdb
        self.session_id = session_id
        self.domain = domain_name(session_id)
        self.log = log
        self._cache: Dict[int, JobRecord] = {}

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        return retry(fn, what, self.log)

    def ensure(self) -> None:
        self._call("CreateDomain", lambda: self.sdb.create_domain(DomainName=self.domain))

    def _put_attrs(self, jobnr: int, attrs: Dict[str, str]) -> None:
        items = [{"Name": k, "Value": v, "Replace": True} for k, v in sorted(attrs.items())]
        self._call(
            f"PutAttributes {item_name(jobnr)}",
            lambda: self.sdb.put_attributes(
                DomainName=self.domain, ItemName=item_name(jobnr), Attributes=items
            ),
        )

    def put(self, record: JobRecord) -> None:
        self._cache[record.jobnr] = record
        self._put_attrs(record.jobnr, record.to_attributes())

    def update(self, jobnr: int, **attrs: Any) -> JobRecord:
        """Change some attributes; the whole known record is written, so a failed earlier update heals.

        A None value leaves the stored attribute as it is; a ``kill`` written by the client survives.
        """
        base = self._cache.get(jobnr) or self.get(jobnr) or JobRecord(jobnr)
        record = base.with_(**attrs)
        self._cache[jobnr] = record
        self._put_attrs(jobnr, record.to_attributes())
        return record

    def get(self, jobnr: int) -> Optional[JobRecord]:
        resp = self._call(
            f"GetAttributes {item_name(jobnr)}",
            lambda: self.sdb.get_attributes(
                DomainName=self.domain, ItemName=item_name(jobnr), ConsistentRead=True
            ),
        )
        attrs = resp.get("Attributes") or []
        if not attrs:
            return None
        return JobRecord.from_attributes(attrs, item_name(jobnr))

    def _select(self, expression: str) -> List[Dict[str, Any]]:
        items: List[Dict[str, Any]] = []
        token: Optional[str] = None
        while True:
            kwargs: Dict[str, Any] = {"SelectExpression": expression, "ConsistentRead": True}
            if token:
                kwargs["NextToken"] = token
            resp = self._call("Select", lambda kw=kwargs: self.sdb.select(**kw))
            items.extend(resp.get("Items") or [])
            token = resp.get("NextToken")
            if not token:
                return items

    def read_all(self) -> List[JobRecord]:
        out = []
        for item in self._select(select_all_jobs(self.session_id)):
            if jobnr_from_item(item["Name"]) is None:
                continue
            out.append(JobRecord.from_attributes(item.get("Attributes") or [], item["Name"]))
        return sorted(out, key=lambda r: r.jobnr)

    def kill_requests(self, jobnrs: Iterable[int]) -> Set[int]:
        nrs = sorted(set(jobnrs))
        found: Set[int] = set()
        # SimpleDB allows at most 20 values in an IN clause.
        for i in range(0, len(nrs), 20):
            for item in self._select(select_kill_requests(self.session_id, nrs[i : i + 20])):
                n = jobnr_from_item(item["Name"])
                if n is not None:
                    found.add(n)
        return found

    def request_kill(self, jobnr: int) -> None:
        self._put_attrs(jobnr, {KILL_ATTRIBUTE: KILL_REQUESTED})

    def delete_all(self) -> None:
        def delete() -> None:
            try:
                self.sdb.delete_domain(DomainName=self.domain)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "NoSuchDomain":
                    raise

        self._call("DeleteDomain", delete)
        self._cache.clear()


class S3Store(StatusStore):
    """One JSON object per job under ``session_id/status/``, written whole; kills under ``control/``."""

    kind = "s3"

    def __init__(self, s3: Any, bucket: str, session_id: str, log: Log = None) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.session_id = session_id
        self.log = log
        self._cache: Dict[int, JobRecord] = {}
        # read_all: key -> (ETag, record), so a refresh fetches only objects that changed
        self._seen: Dict[str, Tuple[str, JobRecord]] = {}
        self.fetches = 0

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        return retry(fn, what, self.log)

    def put(self, record: JobRecord) -> None:
        key = s3layout.status_key(self.session_id, record.jobnr)
        body = record.to_json().encode("utf-8")
        self._cache[record.jobnr] = record
        self._call(
            f"PutObject {key}",
            lambda: self.s3.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType="application/json"
            ),
        )

    def update(self, jobnr: int, **attrs: Any) -> JobRecord:
        base = self._cache.get(jobnr) or self.get(jobnr) or JobRecord(jobnr)
        record = base.with_(**attrs)
        self.put(record)
        return record

    def _get_object(self, key: str) -> Optional[bytes]:
        def get() -> Optional[bytes]:
            try:
                return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                    return None
                raise

        return self._call(f"GetObject {key}", get)

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

        def list_all() -> List[Dict[str, Any]]:
            del out[:]
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                out.extend(page.get("Contents") or [])
            return out

        return self._call(f"ListObjectsV2 {prefix}", list_all)

    def read_all(self) -> List[JobRecord]:
        """Every record: one listing, then only the objects whose ETag changed since last time."""
        records = []
        seen: Dict[str, Tuple[str, JobRecord]] = {}
        for obj in self._list(s3layout.status_prefix(self.session_id)):
            key, etag = obj["Key"], obj.get("ETag", "")
            kind, n = s3layout.classify(key)
            if kind != "status" or n is None:
                continue
            known = self._seen.get(key)
            if known is not None and etag and known[0] == etag:
                seen[key] = known
                records.append(known[1])
                continue
            body = self._get_object(key)
            self.fetches += 1
            if body is not None:
                rec = self._parse(body, n)
                seen[key] = (etag, rec)
                records.append(rec)
        self._seen = seen
        return sorted(records, key=lambda r: r.jobnr)

    def kill_requests(self, jobnrs: Iterable[int]) -> Set[int]:
        wanted = set(jobnrs)
        keys = {o["Key"] for o in self._list(s3layout.control_prefix(self.session_id))}
        return {n for n in wanted if s3layout.kill_key(self.session_id, n) in keys}

    def request_kill(self, jobnr: int) -> None:
        key = s3layout.kill_key(self.session_id, jobnr)
        self._call(
            f"PutObject {key}",
            lambda: self.s3.put_object(Bucket=self.bucket, Key=key, Body=KILL_REQUESTED.encode()),
        )

    def delete_all(self) -> None:
        keys = [
            o["Key"]
            for p in (
                s3layout.status_prefix(self.session_id),
                s3layout.control_prefix(self.session_id),
            )
            for o in self._list(p)
        ]
        for i in range(0, len(keys), 1000):
            chunk = [{"Key": k} for k in keys[i : i + 1000]]
            self._call(
                "DeleteObjects",
                lambda c=chunk: self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": c}),
            )
        self._cache.clear()


def make_store(
    kind: Optional[str], clients: Any, bucket: str, session_id: str, log: Log = None
) -> StatusStore:
    """The store named by user-data ``store=`` (default simpledb); ``clients`` has .sdb and .s3."""
    kind = (kind or "simpledb").lower()
    if kind == "simpledb":
        return SimpleDbStore(clients.sdb, session_id, log)
    if kind == "s3":
        return S3Store(clients.s3, bucket, session_id, log)
    raise FormatError(f"user-data: store={kind!r} is not a status store (use simpledb or s3)")


def record_dict(record: JobRecord) -> Dict[str, Any]:
    """A record as a plain dict (for logs and tests)."""
    return json.loads(record.to_json())
