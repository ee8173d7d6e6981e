"""The job-assignment rule on the paper's six-job example, and its edges."""

from __future__ import annotations

import pytest
from awsac_agent.assignment import (
    instance_for_job,
    jobs_for_instance,
    n_instances,
    plan,
    unused_cores,
)
from awsac_agent.jobscfg import expand_jobs, group_by_snapshot, n_jobs, parse_jobs_cfg

SIX_JOBS = "snap1;shellscriptA.sh;3\nsnap2;shellscriptA.sh;1\nsnap1;shellscriptB.sh;2\n"
# jobs.cfg needs real snapshot ids; the paper's names map onto these.
SIX_JOBS_CFG = SIX_JOBS.replace("snap1", "snap-00000001").replace("snap2", "snap-00000002")


@pytest.mark.parametrize(
    ("cores", "expected", "unused"),
    [
        (1, [[1], [2], [3], [4], [5], [6]], 0),
        (2, [[1, 2], [3, 4], [5, 6]], 0),
        (4, [[1, 2, 3, 4], [5, 6]], 2),
    ],
)
def test_paper_six_jobs(cores: int, expected: list[list[int]], unused: int) -> None:
    lines = parse_jobs_cfg(SIX_JOBS_CFG)
    total = n_jobs(lines)
    assert total == 6
    assert plan(total, cores) == expected
    assert n_instances(total, cores) == len(expected)
    assert unused_cores(total, cores) == unused
    for launch_index, jobnrs in enumerate(expected):
        assert jobs_for_instance(launch_index, cores, total) == jobnrs
        for jobnr in jobnrs:
            assert instance_for_job(jobnr, cores) == launch_index
    # beyond the last instance there is nothing to do
    assert jobs_for_instance(len(expected), cores, total) == []


def test_paper_six_jobs_snapshots_per_instance() -> None:
    """With 2 cores, launch index 1 runs job 3 (snap1, script A) and job 4 (snap2, script A)."""
    jobs = expand_jobs(parse_jobs_cfg(SIX_JOBS_CFG))
    mine = [jobs[n - 1] for n in jobs_for_instance(1, 2, len(jobs))]
    assert [(j.jobnr, j.snapshot, j.script) for j in mine] == [
        (3, "snap-00000001", "shellscriptA.sh"),
        (4, "snap-00000002", "shellscriptA.sh"),
    ]
    assert [s for s, _ in group_by_snapshot(mine)] == ["snap-00000001", "snap-00000002"]
    last = [jobs[n - 1] for n in jobs_for_instance(2, 2, len(jobs))]
    assert [(j.jobnr, j.script) for j in last] == [(5, "shellscriptB.sh"), (6, "shellscriptB.sh")]


def test_eventgen_layout() -> None:
    """The paper's eventgen run: 4 jobs on 2-core instances -> 2 instances, none idle."""
    assert plan(4, 2) == [[1, 2], [3, 4]]
    assert unused_cores(4, 2) == 0


def test_no_jobs() -> None:
    assert n_instances(0, 2) == 0
    assert plan(0, 2) == []
    assert unused_cores(0, 2) == 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: jobs_for_instance(0, 0, 4), "cores per instance must be at least 1, got 0"),
        (lambda: jobs_for_instance(-1, 2, 4), "launch index must be >= 0, got -1"),
        (lambda: instance_for_job(0, 2), "job numbers start at 1, got 0"),
        (lambda: n_instances(4, -1), "cores per instance must be at least 1, got -1"),
    ],
)
def test_bad_arguments(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_static_rule_over_a_retry_list() -> None:
    from awsac_agent.assignment import jobs_from_list

    retry = [3, 8, 9, 14, 15]
    assert [jobs_from_list(li, 2, retry) for li in range(3)] == [[3, 8], [9, 14], [15]]
    assert jobs_from_list(3, 2, retry) == []


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, 100),  # no cap: what the jobs need
        ({"max_instances": 4}, 4),
        ({"max_vcpus": 9}, 4),
        ({"max_vcpus": 16, "vcpus_per_instance": 4}, 4),
        ({"max_instances": 3, "max_vcpus": 16}, 3),
        ({"max_instances": 500}, 100),
        ({"max_vcpus": 1}, 0),
    ],
)
def test_queue_instances(kwargs: dict[str, int], expected: int) -> None:
    from awsac_agent.assignment import queue_instances

    assert queue_instances(200, 2, **kwargs) == expected
