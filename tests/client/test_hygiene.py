"""The cloud layer stays async: no boto3, no Textual, and a refresh never blocks the event loop."""

from __future__ import annotations

import ast
import asyncio
import logging
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "awsac_tui"
ASYNC_LAYER = [
    PKG / "session.py",
    PKG / "monitor.py",
    PKG / "cloud.py",
    *sorted((PKG / "store").glob("*.py")),
]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", ASYNC_LAYER, ids=lambda p: p.name)
def test_async_layer_imports_neither_boto3_nor_textual(path: Path) -> None:
    mods = imported_modules(path)
    assert "boto3" not in mods, f"{path.name} imports boto3 (blocking); use aiobotocore"
    assert "textual" not in mods, f"{path.name} imports textual (UI layer)"


def test_the_ast_check_sees_a_boto3_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    import boto3.session\n")
    assert "boto3" in imported_modules(bad)


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
