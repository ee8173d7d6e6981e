"""What both sides do over S3 listings, without I/O: the ETag cache of the S3-only status store
and the DeleteObjects batches. The agent (boto3) and the client (aiobotocore) make the calls;
the client imports this module, never the reverse.
"""

from __future__ import annotations

from typing import Any, Dict, Generic, Iterable, Iterator, List, Mapping, Sequence, Tuple, TypeVar

from .errors import CloudError

DELETE_BATCH = 1000  # S3's limit of keys in one DeleteObjects

V = TypeVar("V")


class EtagCache(Generic[V]):
    """What was read of each object, by key, with the ETag it had then: a refresh fetches only
    the objects that are new or changed, and forgets those no longer listed."""

    def __init__(self) -> None:
        self._known: Dict[str, Tuple[str, V]] = {}

    def sync(self, listing: Iterable[Tuple[str, str]]) -> Tuple[List[str], List[str]]:
        """For a listing of (key, ETag): (keys to fetch: new, changed or without an ETag;
        keys forgotten because the listing no longer has them)."""
        listed = dict(listing)
        gone = [k for k in self._known if k not in listed]
        for k in gone:
            del self._known[k]
        stale = [
            k for k, etag in listed.items() if not etag or self._known.get(k, ("",))[0] != etag
        ]
        return stale, gone

    def put(self, key: str, etag: str, value: V) -> None:
        self._known[key] = (etag, value)

    def drop(self, key: str) -> None:
        self._known.pop(key, None)

    def clear(self) -> None:
        self._known.clear()

    def values(self) -> List[V]:
        """The values read, in key order."""
        return [self._known[k][1] for k in sorted(self._known)]


def delete_batches(keys: Sequence[str]) -> Iterator[Dict[str, Any]]:
    """The ``Delete=`` argument of each DeleteObjects call that removes ``keys``."""
    for i in range(0, len(keys), DELETE_BATCH):
        batch = keys[i : i + DELETE_BATCH]
        yield {"Objects": [{"Key": k} for k in batch], "Quiet": False}


def deleted_keys(bucket: str, response: Mapping[str, Any]) -> List[str]:
    """The keys a DeleteObjects answer says it deleted. S3 answers 200 even when some keys were
    not deleted: those are in ``Errors``, and they raise CloudError naming the first one."""
    errors = response.get("Errors") or []
    if errors:
        first = errors[0]
        raise CloudError(
            f"could not delete s3://{bucket}/{first.get('Key')}: {first.get('Code')} "
            f"{first.get('Message')} ({len(errors)} objects failed; run cleanup again)"
        )
    return [d["Key"] for d in response.get("Deleted") or []]
