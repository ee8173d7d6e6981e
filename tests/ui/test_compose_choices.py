"""session.compose_choices on the local cloud: every list, batching, and lists the account may not read.

Also LiveBackend.compose_choices, which hands the same lists to the compose screen.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from awsac_agent import faults
from ui_helpers import EVENTGEN

from awsac_tui import session
from awsac_tui.session import SnapshotInfo
from awsac_tui.session.pricing import PRICES_TOML
from awsac_tui.spec import CloudProfile
from awsac_tui.ui.live import LiveBackend

PRICES = tomllib.loads(PRICES_TOML.read_text(encoding="utf-8"))["regions"]["us-east-1"]


@pytest.fixture(scope="module")
def account(local_cloud: Any) -> dict[str, str]:
    """A job-data snapshot, a key pair and a bucket of our own in the local cloud."""
    from awsac_tui.local import service

    def client(name: str) -> Any:
        return service.boto3_client(local_cloud, name)

    snap = service.make_snapshot(EVENTGEN / "release", "ATLAS 14.2.10 (choices test)")
    client("ec2").create_key_pair(KeyName="choices-key")
    client("s3").create_bucket(Bucket="choices-bucket")
    return {"snapshot": snap, "key": "choices-key", "bucket": "choices-bucket"}


@pytest.fixture
def fault_plan() -> Iterator[Callable[[str], None]]:
    """Set the process's fault rules for clients opened afterwards; restored at the end."""
    yield lambda text: faults.reset(text) and None
    faults.reset(None)


async def _choices(count: dict[str, int] | None = None) -> session.ComposeChoices:
    async with session.Cloud(CloudProfile(local=True)) as cloud:
        if count is not None:
            ec2 = await cloud.client("ec2")

            def counted(**_: Any) -> None:
                count["DescribeInstanceTypes"] = count.get("DescribeInstanceTypes", 0) + 1

            ec2.meta.events.register("before-call.ec2.DescribeInstanceTypes", counted)
        return await session.compose_choices(cloud)


async def test_every_list_from_the_account(local_cloud: Any, account: dict[str, str]) -> None:
    calls: dict[str, int] = {}
    got = await _choices(calls)
    assert got.notes == ()

    by_id = {s.snapshot_id: s for s in got.snapshots}
    snap = by_id[account["snapshot"]]
    assert snap.description == "ATLAS 14.2.10 (choices test)" and (snap.size_gib or 0) >= 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", snap.start_time)
    # the emulator's hundreds of AMI root-disk snapshots are not job data: left out
    assert not [
        s for s in got.snapshots if s.description.startswith("Auto-created snapshot for AMI")
    ]
    starts = [s.start_time for s in got.snapshots]
    assert starts == sorted(starts, reverse=True)

    assert (local_cloud.image_id, "awsac-local") in [(i.image_id, i.name) for i in got.images]

    types = {t.name: (t.vcpus, t.hourly_price) for t in got.instance_types}
    assert types["c5.large"] == (2, PRICES["c5.large"])
    assert types["c5.2xlarge"] == (8, PRICES["c5.2xlarge"])
    assert set(types) <= set(PRICES) and len(types) >= len(PRICES) - 2
    prices = [t.hourly_price for t in got.instance_types]
    assert prices == sorted(prices)
    assert calls["DescribeInstanceTypes"] == 1  # one filtered call, not one per type

    assert account["key"] in got.key_pairs
    assert account["bucket"] in got.buckets


async def test_a_refused_list_is_empty_with_a_note_and_the_rest_still_load(
    local_cloud: Any, account: dict[str, str], fault_plan: Callable[[str], None]
) -> None:
    fault_plan(
        "ec2:DescribeKeyPairs:fail=99:AccessDenied:status=403,"
        "ec2:DescribeImages:fail=99:UnauthorizedOperation:status=403,"
        "ec2:DescribeInstanceTypes:fail=99:InvalidParameterValue:status=400"
    )
    got = await _choices()
    assert got.key_pairs == () and got.images == () and got.instance_types == ()
    assert got.notes == (
        "images: this account may not call DescribeImages (UnauthorizedOperation)",
        "instance types: DescribeInstanceTypes failed (InvalidParameterValue)",
        "key pairs: this account may not call DescribeKeyPairs (AccessDenied)",
    )
    assert account["snapshot"] in {s.snapshot_id for s in got.snapshots}
    assert account["bucket"] in got.buckets


async def test_a_refused_bucket_listing_is_silent(
    local_cloud: Any, account: dict[str, str], fault_plan: Callable[[str], None]
) -> None:
    fault_plan("s3:ListBuckets:fail=99:AccessDenied:status=403")
    got = await _choices()
    assert got.buckets == () and got.notes == ()
    assert account["key"] in got.key_pairs


async def test_live_backend_offers_the_same_lists(
    local_cloud: Any, account: dict[str, str], fault_plan: Callable[[str], None]
) -> None:
    fault_plan("ec2:DescribeKeyPairs:fail=99:AccessDenied:status=403")
    backend = LiveBackend(CloudProfile(local=True))
    try:
        got = await backend.compose_choices()
    finally:
        await backend.aclose()
    snap = next(s for s in got.snapshots if s.snapshot_id == account["snapshot"])
    assert isinstance(snap, SnapshotInfo) and snap.description == "ATLAS 14.2.10 (choices test)"
    assert snap.size_gib and snap.start_time
    assert ("c5.large", 2) in [(t.name, t.vcpus) for t in got.instance_types]
    assert got.key_pairs == ()
    assert got.notes == ("key pairs: this account may not call DescribeKeyPairs (AccessDenied)",)
