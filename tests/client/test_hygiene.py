"""A refresh never blocks the event loop. (Which layer may import boto3 or Textual is an
import-linter contract in pyproject.toml, checked by `lint-imports` over the whole graph.)"""

from __future__ import annotations

import asyncio
import logging

import pytest


@pytest.mark.slow
def test_monitor_refresh_has_no_slow_callback(aws_env, local_cloud, caplog, monkeypatch) -> None:
    import urllib3.connectionpool

    def blocking_http(*args, **kwargs):
        raise AssertionError("a synchronous (urllib3) HTTP request ran during a refresh")

    # botocore's synchronous transport is urllib3: trap it, so a blocking call fails for sure
    monkeypatch.setattr(urllib3.connectionpool.HTTPConnectionPool, "urlopen", blocking_http)
    from awsac_tui.cloud import Cloud
    from awsac_tui.monitor import Monitor
    from awsac_tui.records import SessionRecord
    from awsac_tui.spec import CloudProfile

    record = SessionRecord(
        session_id="260101_1200--hygiene--0000",
        state="running",
        bucket="awsac-hygiene",
        n_jobs=3,
        cores_per_instance=2,
        status_store="s3",
        jobs=("-;job.sh;3",),
        cloud=CloudProfile(local=True),
    )

    async def scenario() -> int:
        async with Cloud(record.cloud) as cloud:
            s3 = await cloud.client("s3")
            await s3.create_bucket(Bucket=record.bucket)
            mon = Monitor(record, cloud, write_lost=False)
            await mon.refresh()  # opens the ec2 client (loading its model is one-off work)
            loop = asyncio.get_running_loop()
            loop.set_debug(True)
            # generous: the 2-core CI machine preempts us; a blocking cloud call takes longer
            loop.slow_callback_duration = 0.5
            snaps = [await mon.refresh() for _ in range(3)]
            loop.set_debug(False)
            return len(snaps[-1].jobs)

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        n = asyncio.run(scenario())
    assert n == 3
    slow = [r.getMessage() for r in caplog.records if "took" in r.getMessage()]
    assert not slow, f"blocking calls on the event loop: {slow}"
