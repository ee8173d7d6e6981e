"""End-to-end: the real agent (boot step and worker) runs sessions on the local cloud."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from agent_e2e_helpers import EVENTGEN, start_session
from awsac_agent.status import FINISHED

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
STORES = ["simpledb", "s3"]


def _eventgen_scripts() -> dict[str, str]:
    names = ["gen_30.sh", "gen_1000.sh", "CSC.007410.singlepart_singlepi_logE.cfg"]
    return {n: (EVENTGEN / n).read_text() for n in names}


def _no_volumes_left(sess: Any) -> None:
    assert sess.session_volumes() == [], "the agent left volumes behind"


@pytest.mark.parametrize("store", STORES)
def test_eventgen_session_finishes_and_cleans_up(
    store: str, tmp_path: Path, local_cloud: Any, boto3_client: Any, release_snapshot: str
) -> None:
    jobs = f"{release_snapshot};gen_30.sh;2\n{release_snapshot};gen_1000.sh;2\n"
    sess = start_session(
        tmp_path,
        boto3_client,
        local_cloud.image_id,
        jobs,
        _eventgen_scripts(),
        n_instances=2,
        cores=2,
        store=store,
    )
    sess.wait_terminated()
    assert [(r.jobnr, r.status, r.returncode) for r in sess.records] == [
        (n, FINISHED, 0) for n in (1, 2, 3, 4)
    ]
    for r in sess.records:
        assert r.runstarttime and r.runendtime and r.savestarttime and r.saveendtime
        assert r.results == "saved" and r.error is None
        assert r.snapshot == release_snapshot
        assert r.launchindex == (r.jobnr - 1) // 2
    keys = sess.keys()
    expected = {
        "processjobslog_LI_0.tar.bz2",
        "processjobslog_LI_1.tar.bz2",
        "sessionarchive.tar.bz2",
        *(f"results_job_{n}.tar.bz2" for n in (1, 2, 3, 4)),
        *(f"stdouterr_job_{n}.tar.bz2" for n in (1, 2, 3, 4)),
        *(f"live/job_{n}.log" for n in (1, 2, 3, 4)),
    }
    assert expected <= keys
    paper_eleven = {k for k in keys if "/" not in k}
    assert len(paper_eleven) == 11, sorted(paper_eleven)
    assert "ATLAS JOB END" in sess.tar_member("stdouterr_job_1.tar.bz2", "stdouterr_job_1.log")
    assert "ATLAS JOB END" in sess.object_text("live/job_3.log")
    plog = sess.tar_member("processjobslog_LI_1.tar.bz2", "processjobs.log")
    assert "my job numbers are: [3, 4]" in plog
    _no_volumes_left(sess)
    console = sess.console(sess.instance_ids[0])
    assert "awsac_all_instances_autorun.sh" in console
    assert "instructing EC2 to terminate my instance" in console
