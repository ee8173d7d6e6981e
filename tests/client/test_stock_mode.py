"""A session for a stock image carries the cloud-init bootstrap, not the bare legacy string."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from awsac_agent.userdata import MAX_USERDATA_BYTES, parse_userdata

from awsac_tui import session, sweep
from awsac_tui.cloud import Cloud
from awsac_tui.session.start import _record_for
from awsac_tui.spec import CloudProfile


async def test_stock_image_mode_sends_the_bootstrap_script(
    example_dir: Path, aws_env: dict[str, str], local_cloud: Any
) -> None:
    toml = example_dir / "session.toml"
    text = toml.read_text().replace("[tags]", 'image_mode = "stock"\n\n[tags]', 1)
    toml.write_text(text)
    async with Cloud(CloudProfile(local=True)) as cloud:
        plan = await session.plan_start(toml, cloud=cloud)
    plan.discard()
    ud = plan.userdata
    assert ud.startswith("#!/bin/sh\n")
    assert len(ud.encode()) < MAX_USERDATA_BYTES
    parsed = parse_userdata(ud)
    assert parsed is not None and parsed.session_id == plan.session_id
    assert parsed.cores_per_instance == plan.cores_per_instance == 2
    assert "awsac-processjobs.pyz" in ud  # the worker comes from the session archive


async def test_baked_image_mode_sends_the_legacy_string(
    example_dir: Path, aws_env: dict[str, str], local_cloud: Any
) -> None:
    async with Cloud(CloudProfile(local=True)) as cloud:
        plan = await session.plan_start(example_dir / "session.toml", cloud=cloud)
    plan.discard()
    assert plan.userdata.split(";")[:4] == [
        plan.session_id,
        "atlassessions",
        "sessionarchive.tar.bz2",
        "2",
    ]


async def test_stock_image_record_keeps_the_legacy_string_and_its_lease(
    example_dir: Path, aws_env: dict[str, str], local_cloud: Any
) -> None:
    """The record carries the paper's string (not the script), so the client's lease sweep works."""
    toml = example_dir / "session.toml"
    text = toml.read_text().replace(
        "[tags]", 'image_mode = "stock"\nmax_session_hours = 2\n\n[tags]', 1
    )
    toml.write_text(text)
    async with Cloud(CloudProfile(local=True)) as cloud:
        plan = await session.plan_start(toml, cloud=cloud)
    plan.discard()
    record = _record_for(plan)
    assert record.runuserdata.split(";")[:4] == [
        plan.session_id,
        "atlassessions",
        "sessionarchive.tar.bz2",
        "2",
    ]
    assert sweep.lease_seconds(record) == 2 * 3600
