"""session.toml settings of queue mode and retries (issues 13 and 14)."""

from __future__ import annotations

import pytest
from awsac_agent.errors import FormatError

from awsac_tui.spec import parse_spec_toml, validate_spec

MINIMAL = (
    'instance_type = "c5.large"\nimage_id = "ami-0abc1234"\nbucket = "atlassessions"\n'
    'shortdescr = "eventgen"\n'
)


def test_defaults_are_the_papers_static_rule_with_three_attempts() -> None:
    s = parse_spec_toml(MINIMAL)
    assert (s.assignment, s.max_instances, s.max_vcpus) == ("static", None, None)
    assert (s.max_attempts, s.retry_failed, s.job_minutes) == (3, False, None)


def test_queue_settings_load() -> None:
    s = parse_spec_toml(
        MINIMAL + 'assignment = "queue"\nmax_instances = 4\nmax_vcpus = 16\nmax_attempts = 2\n'
        "retry_failed = true\njob_minutes = 1.5\n"
    )
    assert (s.assignment, s.max_instances, s.max_vcpus, s.max_attempts) == ("queue", 4, 16, 2)
    assert s.retry_failed is True and s.job_minutes == 1.5
    assert validate_spec(s) == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('assignment = "random"\n', "key 'assignment': 'random' is not a job assignment"),
        ("max_instances = 4\n", 'caps queue mode only (set assignment = "queue"'),
        ('assignment = "queue"\nmax_vcpus = 0\n', "key 'max_vcpus': 0 must be at least 1"),
        ("max_attempts = 0\n", "key 'max_attempts': 0 must be at least 1 (1: never retry)"),
        ("job_minutes = -1\n", "key 'job_minutes': -1.0 must be above 0"),
        ('max_attempts = "3"\n', "key 'max_attempts': found '3', expected a whole number"),
    ],
)
def test_bad_queue_settings_name_the_key_and_the_fix(extra: str, message: str) -> None:
    with pytest.raises(FormatError) as exc:
        s = parse_spec_toml(MINIMAL + extra)
        problems = validate_spec(s)
        raise FormatError("; ".join(problems), problems)
    assert any(message in p for p in exc.value.problems), exc.value.problems
