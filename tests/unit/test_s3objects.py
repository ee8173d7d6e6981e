"""The pure S3 helpers both sides share: the status store's ETag cache, DeleteObjects batches."""

from __future__ import annotations

import pytest
from awsac_agent.errors import CloudError
from awsac_agent.s3objects import DELETE_BATCH, EtagCache, delete_batches, deleted_keys


def test_etag_cache_fetches_new_and_changed_and_forgets_gone() -> None:
    cache: EtagCache[str] = EtagCache()
    assert cache.sync([("a", "1"), ("b", "1")]) == (["a", "b"], [])
    cache.put("a", "1", "A1")
    cache.put("b", "1", "B1")
    assert cache.sync([("a", "1"), ("b", "2"), ("c", "1")]) == (["b", "c"], [])
    cache.put("b", "2", "B2")
    assert cache.sync([("b", "2"), ("d", "")]) == (["d"], ["a"])  # no ETag: always fetched
    assert cache.values() == ["B2"]


def test_delete_batches_keep_s3s_limit() -> None:
    keys = [f"k{i}" for i in range(2 * DELETE_BATCH + 1)]
    batches = list(delete_batches(keys))
    assert [len(b["Objects"]) for b in batches] == [DELETE_BATCH, DELETE_BATCH, 1]
    assert batches[-1]["Objects"] == [{"Key": keys[-1]}] and not batches[0]["Quiet"]
    assert list(delete_batches([])) == []


def test_errors_in_a_delete_answer_are_not_ignored() -> None:
    assert deleted_keys("b", {"Deleted": [{"Key": "x"}]}) == ["x"]
    answer = {
        "Deleted": [{"Key": "x"}],
        "Errors": [{"Key": "y", "Code": "AccessDenied", "Message": "Access Denied"}],
    }
    with pytest.raises(CloudError, match=r"s3://b/y: AccessDenied Access Denied \(1 objects"):
        deleted_keys("b", answer)
