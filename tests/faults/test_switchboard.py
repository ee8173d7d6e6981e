"""The fault switchboard's own rules: windows, delays, agent rules, the per-session file."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from awsac_agent import faults
from awsac_agent.errors import FormatError


class _Model:
    def __init__(self, name: str) -> None:
        self.name = name


def test_new_options_parse() -> None:
    window, delay, kill, hang = faults.parse_faults(
        "sdb:PutAttributes:skip=2:for=30:RequestLimitExceeded\n"
        "ec2:RunInstances:delay=1.5  # a comment\n"
        "agent:kill:step=run:after=2, agent:hang:job=3"
    )
    assert (window.seconds, window.skip, window.code, window.status) == (
        30.0,
        2,
        "RequestLimitExceeded",
        500,
    )
    assert delay.delay == 1.5 and delay.delay_only
    assert (kill.service, kill.operation, kill.step, kill.after) == ("agent", "kill", "run", 2.0)
    assert hang.job == 3
    for bad in ("agent:explode:step=run", "agent:kill", "agent:hang", "s3:PutObject:for=soon"):
        with pytest.raises(FormatError, match="AWSAC_FAULTS"):
            faults.parse_faults(bad)


def test_for_window_fails_every_matching_call_then_stops() -> None:
    plan = faults.FaultPlan(faults.parse_faults("sdb:Select:skip=1:for=0.3:ServiceUnavailable"))
    decide = plan._decide
    assert decide("simpledb", "Select") is None  # skipped
    assert decide("simpledb", "Select") is not None  # the window opens
    assert decide("simpledb", "PutAttributes") is None  # another operation
    assert decide("simpledb", "Select") is not None
    time.sleep(0.35)  # real time: a window is wall-clock time in the agent, a 0.3 s one here
    assert decide("simpledb", "Select") is None  # the window closed
    assert [i[2] for i in plan.injected] == ["ServiceUnavailable"] * 2


def test_until_file_ends_the_window_early(tmp_path: Path) -> None:
    over = tmp_path / "outage-over"
    plan = faults.FaultPlan(faults.parse_faults(f"sdb:*:for=600:until={over}:ServiceUnavailable"))
    assert plan._decide("simpledb", "Select") is not None  # the window opens
    assert plan._decide("simpledb", "PutAttributes") is not None
    over.touch()
    assert plan._decide("simpledb", "Select") is None  # ended by the file, not the clock
    with pytest.raises(FormatError, match="give for=S too"):
        faults.parse_faults(f"sdb:*:until={over}")


def test_each_injected_fault_is_logged_before_it_acts(tmp_path: Path, monkeypatch) -> None:
    log = tmp_path / "faults.log"
    monkeypatch.setenv(faults.LOG_ENV, str(log))
    plan = faults.FaultPlan(faults.parse_faults("ec2:RunInstances:delay=120,s3:PutObject:fail=1"))
    assert plan._decide("ec2", "RunInstances") is not None
    assert plan._decide("s3", "PutObject") is not None
    assert plan._decide("s3", "PutObject") is None  # let through: not logged
    assert log.read_text() == "ec2 RunInstances delay 120s\ns3 PutObject InternalError\n"


def test_agent_rules_fire_once_at_their_step_and_time() -> None:
    plan = faults.FaultPlan(faults.parse_faults("agent:kill:step=run:after=5,agent:hang:job=2"))
    assert plan.step_rules("plan") == []
    assert plan.step_rules("run", elapsed=1.0) == []
    (rule,) = plan.step_rules("run", elapsed=5.0)
    assert rule.operation == "kill"
    assert plan.step_rules("run", elapsed=9.0) == []  # once
    assert plan.hangs(2) and not plan.hangs(1)


def test_session_file_is_read_on_the_local_cloud_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / faults.SESSION_FILE).write_text("# test\ns3:PutObject:fail=2\n")
    faults.reset("")
    try:
        monkeypatch.delenv("AWSAC_DEVICE_PROVIDER", raising=False)
        assert faults.load_session_file(tmp_path) == [] and faults.plan().rules == []
        monkeypatch.setenv("AWSAC_DEVICE_PROVIDER", "local")
        (rule,) = faults.load_session_file(tmp_path)
        assert (rule.operation, rule.fail) == ("PutObject", 2) and faults.plan().rules == [rule]
    finally:
        faults.reset("")


async def test_async_hook_delays_without_blocking_and_fails() -> None:
    """The client's aiobotocore hook: a coroutine, so a delay leaves the event loop free."""
    import asyncio

    plan = faults.FaultPlan(
        faults.parse_faults("ec2:RunInstances:delay=0.3,ec2:DescribeImages:AccessDenied:status=403")
    )
    hooks: dict[str, object] = {}

    class Events:
        def register(self, name: str, fn: object) -> None:
            hooks[name] = fn

    class Meta:
        events = Events()

        class service_model:  # noqa: N801 - botocore's attribute name
            class service_id:  # noqa: N801
                @staticmethod
                def hyphenize() -> str:
                    return "ec2"

    class Client:
        meta = Meta()

    plan.install(Client(), asynchronous=True)
    hook = hooks["before-call.ec2"]
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    task = asyncio.create_task(ticker())
    t0 = time.monotonic()
    assert await hook(model=_Model("RunInstances"), params={}) is None  # delayed, then sent
    assert time.monotonic() - t0 >= 0.3 and ticks >= 5
    task.cancel()
    http, parsed = await hook(model=_Model("DescribeImages"), params={})
    assert http.status_code == 403 and parsed["Error"]["Code"] == "AccessDenied"
