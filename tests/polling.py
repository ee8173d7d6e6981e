"""The one poll-until helper of the tests (wait for a condition, never sleep and hope), and the
``awsac check`` polls built on it. tests/ is on sys.path (tests/conftest.py): ``from polling import``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Generator
from typing import Any


def _checks(
    condition: Callable[[], Any], timeout: float, what: str, detail: Callable[[], str] | None
) -> Generator[None, None, Any]:
    """The loop both waits share: check, and yield for a pause until ``condition()`` is truthy
    (the generator returns it) or ``timeout`` seconds are over (AssertionError naming ``what``)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            more = f"; {detail()}" if detail else ""
            raise AssertionError(f"timed out after {timeout} s waiting for {what}{more}")
        yield


def wait_for(
    condition: Callable[[], Any],
    timeout: float = 20.0,
    what: str = "condition",
    every: float = 0.1,
    detail: Callable[[], str] | None = None,
) -> Any:
    """Call ``condition`` until it returns something truthy and return that; after ``timeout``
    seconds fail naming ``what`` (and what ``detail()`` says then)."""
    checks = _checks(condition, timeout, what, detail)
    try:
        while True:
            next(checks)
            time.sleep(every)
    except StopIteration as done:
        return done.value


async def wait_for_async(
    condition: Callable[[], Any],
    pause: Callable[[], Awaitable[Any]],
    timeout: float = 10.0,
    what: str = "condition",
    detail: Callable[[], str] | None = None,
) -> Any:
    """``wait_for`` on an event loop: ``await pause()`` between the checks (a pilot's pause lets
    the app run)."""
    checks = _checks(condition, timeout, what, detail)
    try:
        while True:
            next(checks)
            await pause()
    except StopIteration as done:
        return done.value


Cli = Callable[..., tuple[int, str, str]]


def check(cli: Cli, sid: str, *extra: str) -> dict[str, Any]:
    """``awsac check SID --json``: the snapshot as a dict."""
    rc, out, err = cli("check", sid, "--json", *extra)
    assert rc in (0, 1), err
    return json.loads(out)


def poll(
    cli: Cli, sid: str, until: Callable[[dict[str, Any]], Any], timeout: float = 180.0, *extra: str
) -> dict[str, Any]:
    """``check --json`` until ``until(snapshot)`` holds; returns that snapshot."""
    last: dict[str, Any] = {}

    def ready() -> bool:
        last["snap"] = check(cli, sid, *extra)
        return bool(until(last["snap"]))

    wait_for(
        ready,
        timeout,
        f"a snapshot of {sid}",
        every=0.3,
        detail=lambda: f"last snapshot {json.dumps(last.get('snap'))[:3000]}",
    )
    return last["snap"]


def poll_text(cli: Cli, sid: str, text: str, timeout: float = 60.0, *extra: str) -> str:
    """``awsac check SID`` (text) until its output contains ``text``; returns that output."""
    last = {"out": "", "err": ""}

    def ready() -> bool:
        _, last["out"], last["err"] = cli("check", sid, *extra)
        return text in last["out"]

    wait_for(
        ready,
        timeout,
        f"{text!r} in `awsac check {sid}`",
        every=0.3,
        detail=lambda: last["out"] + last["err"],
    )
    return last["out"]
