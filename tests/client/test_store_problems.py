"""A status record the client cannot read is named in the snapshot's notices, not dropped silently."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from awsac_agent import s3layout
from awsac_agent.status import PENDING, JobRecord, domain_name, item_name

from awsac_tui.cloud import Cloud
from awsac_tui.monitor import Monitor
from awsac_tui.records import SessionRecord
from awsac_tui.spec import CloudProfile
from awsac_tui.store import open_store

SID = "260101_1200--probl--beef"
BUCKET = "awsac-store-problems"


@pytest.fixture
def clients(aws_env: dict[str, str], boto3_client: Callable[[str], Any]) -> Callable[[str], Any]:
    boto3_client("s3").create_bucket(Bucket=BUCKET)
    return boto3_client


async def _read(kind: str) -> tuple[list[int], list[str]]:
    async with Cloud(CloudProfile(local=True)) as cloud:
        store = open_store(kind, cloud, SID, BUCKET)
        records = await store.read_all()
        return [r.jobnr for r in records], store.problems


async def test_s3_store_names_an_unreadable_record(clients: Callable[[str], Any]) -> None:
    s3 = clients("s3")
    good = JobRecord(1, PENDING).to_json().encode()
    s3.put_object(Bucket=BUCKET, Key=s3layout.status_key(SID, 1), Body=good)
    s3.put_object(Bucket=BUCKET, Key=s3layout.status_key(SID, 2), Body=b"{not json")
    jobs, problems = await _read("s3")
    assert jobs == [1]
    (problem,) = problems
    assert s3layout.status_key(SID, 2) in problem and "not a job record" in problem
    record = SessionRecord(
        session_id=SID, state="running", bucket=BUCKET, n_jobs=2, status_store="s3"
    )
    async with Cloud(CloudProfile(local=True)) as cloud:
        snap = await Monitor(record, cloud, write_lost=False).refresh()
    assert problem in snap.notices
    s3.put_object(
        Bucket=BUCKET,
        Key=s3layout.status_key(SID, 2),
        Body=JobRecord(2, PENDING).to_json().encode(),
    )
    assert await _read("s3") == ([1, 2], [])


async def test_simpledb_store_names_an_unreadable_item(clients: Callable[[str], Any]) -> None:
    sdb = clients("sdb")
    sdb.create_domain(DomainName=domain_name(SID))
    for name, jobnr in ((item_name(1), "1"), (item_name(2), "two")):
        sdb.put_attributes(
            DomainName=domain_name(SID),
            ItemName=name,
            Attributes=[
                {"Name": "jobnr", "Value": jobnr, "Replace": True},
                {"Name": "status", "Value": PENDING, "Replace": True},
            ],
        )
    jobs, problems = await _read("simpledb")
    assert jobs == [1]
    (problem,) = problems
    assert f"item 'job2' of SimpleDB domain {domain_name(SID)}" in problem
    sdb.delete_domain(DomainName=domain_name(SID))
