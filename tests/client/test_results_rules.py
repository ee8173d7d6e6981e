"""``results`` on the local cloud, without a session run: one question for all differing files,
the free space checked first, a full disk named with the path and what is still needed."""

from __future__ import annotations

import errno
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from awsac_tui import session
from awsac_tui.cloud import Cloud
from awsac_tui.records import SessionRecord
from awsac_tui.spec import CloudProfile

BUCKET = "awsac-results-tests"
results_mod = importlib.import_module("awsac_tui.session.results")  # the module, not the verb


@pytest.fixture
def record(aws_env: dict[str, str], boto3_client: Callable[[str], Any]) -> SessionRecord:
    s3 = boto3_client("s3")
    s3.create_bucket(Bucket=BUCKET)
    for n in (1, 2, 3):
        s3.put_object(Bucket=BUCKET, Key=f"sid/results_job_{n}.tar.bz2", Body=b"x" * 1000 * n)
    return SessionRecord(
        session_id="sid", state="ended", bucket=BUCKET, cloud=CloudProfile(local=True)
    )


async def _results(record: SessionRecord, outdir: Path, **kw: Any) -> list[session.Download]:
    async with Cloud(record.cloud) as cloud:
        return await session.results(record, outdir, cloud=cloud, **kw)


async def test_one_question_for_all_differing_files(record: SessionRecord, tmp_path: Path) -> None:
    got = await _results(record, tmp_path / "a" / "b")
    assert {d.action for d in got} == {"saved"}
    target = tmp_path / "a" / "b" / "session-sid"
    for n in (1, 2, 3):
        (target / f"results_job_{n}.tar.bz2").write_bytes(b"changed")
    asked: list[str] = []

    def answer(question: str) -> bool:
        asked.append(question)
        return True

    got = await _results(record, tmp_path / "a" / "b", ask_overwrite=answer)
    assert len(asked) == 1 and "3 files" in asked[0] and "results_job_2.tar.bz2" in asked[0]
    assert {d.action for d in got} == {"overwritten"}
    got = await _results(record, tmp_path / "a" / "b", ask_overwrite=answer)
    assert {d.action for d in got} == {"skipped"} and len(asked) == 1  # identical: no question


async def test_too_little_free_space_is_said_before_downloading(
    record: SessionRecord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Usage:
        free = 100

    monkeypatch.setattr(results_mod.shutil, "disk_usage", lambda path: Usage())
    with pytest.raises(session.SessionError) as exc:
        await _results(record, tmp_path)
    message = str(exc.value)
    assert f"{tmp_path / 'session-sid'}: the 3 file(s) to download need 5.9 KiB" in message
    assert "only 100 B are free" in message
    assert not list((tmp_path / "session-sid").iterdir())


async def test_a_disk_that_fills_names_the_path_and_what_is_missing(
    record: SessionRecord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = results_mod._open_part

    class Full:
        """A file on a full disk."""

        def __init__(self, fh: Any) -> None:
            self.fh = fh

        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self) -> None:
            self.fh.close()

    def open_full(target: Path, path: Path) -> tuple[Path, Any]:
        tmp, fh = real_open(target, path)
        return tmp, Full(fh)

    monkeypatch.setattr(results_mod, "_open_part", open_full)
    with pytest.raises(session.SessionError) as exc:
        await _results(record, tmp_path, concurrency=1)
    message = str(exc.value)
    assert "the disk is full" in message and "still to download" in message
    assert str(tmp_path / "session-sid") in message
    assert [p.name for p in (tmp_path / "session-sid").iterdir()] == []  # nothing half-written
