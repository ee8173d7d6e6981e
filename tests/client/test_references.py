"""Compose and `start` check that the image and each snapshot exist before anything is created
(issue 15): one DescribeImages and one DescribeSnapshots call, problems naming the line to fix."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from awsac_agent.jobscfg import JobLine

from awsac_tui.cloud import Cloud
from awsac_tui.spec import CloudProfile, SessionSpec

ROOT = Path(__file__).resolve().parents[2]


async def test_missing_image_and_snapshot_are_named_with_their_line(
    local_cloud: Any, release_snapshot: str
) -> None:
    from awsac_tui.session import check_references

    spec = SessionSpec("c5.large", "ami-00000000", "atlassessions", "eventgen")
    lines = [
        JobLine(release_snapshot, "gen_30.sh", 2, 7),
        JobLine("snap-00000000", "gen_1000.sh", 2, 8),
        JobLine(None, "plain.sh", 1, 9),
    ]
    async with Cloud(CloudProfile(local=True)) as cloud:
        problems = await check_references(cloud, spec, lines)
        ok = await check_references(
            cloud, SessionSpec("c5.large", local_cloud.image_id, "b", "x"), lines[:1]
        )
    assert ok == []
    assert len(problems) == 2, problems
    assert problems[0].startswith("session.toml: image_id 'ami-00000000' does not exist on local")
    assert local_cloud.image_id in problems[0]
    assert problems[1].startswith("jobs.cfg, line 8: snapshot snap-00000000 does not exist")
    assert "make one with `awsac local snapshot DIR`" in problems[1]
    assert not any("None" in p for p in problems)


def test_start_refuses_a_missing_snapshot_before_creating_anything(
    cli, local_cloud: Any, boto3_client, tmp_path: Path
) -> None:
    job_dir = tmp_path / "eventgen"
    shutil.copytree(
        ROOT / "examples" / "eventgen", job_dir, ignore=shutil.ignore_patterns("release")
    )
    text = (job_dir / "session.toml").read_text().replace("ami-00000000", local_cloud.image_id)
    (job_dir / "session.toml").write_text(text.replace('image_owner = "123456789012"\n', ""))
    before = len(boto3_client("ec2").describe_instances()["Reservations"])
    code, out, err = cli("start", str(job_dir / "session.toml"), "-y", "--local")
    assert code == 2, (out, err)
    assert f"{job_dir / 'jobs.cfg'}, line 7: snapshot snap-00000000 does not exist on local" in err
    assert f"{job_dir / 'jobs.cfg'}, line 8: snapshot snap-00000000" in err
    assert "None" not in err
    assert len(boto3_client("ec2").describe_instances()["Reservations"]) == before
