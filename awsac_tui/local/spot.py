"""Spot interruptions on the local cloud: a notice on the instance's metadata, then EC2's reclaim.

``awsac local interrupt INSTANCE [--notice S]`` (side endpoint ``POST /_awsac/interrupt``) and the
fault rule ``cloud:spot-interrupt:share=F[:seed=N][:after=S][:for=S][:notice=S]`` (in
``AWSAC_FAULTS`` of the process that starts the local cloud, or set with ``service.configure``)
both end here. As EC2 documents it: the instance's metadata answers ``spot/instance-action``
(``{"action": "terminate", "time": "...Z"}``), ``spot/termination-time`` and
``events/recommendations/rebalance`` (``{"noticeTime": "...Z"}``) from the notice on (404
before); when the notice runs out the instance is terminated with the state reason
``Server.SpotInstanceTermination``.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from awsac_agent.faults import CLOUD, FaultRule, parse_faults

from awsac_tui.local.common import ACCOUNT_ID
from awsac_tui.local.imds import SpotNotice

log = logging.getLogger("awsac.local.spot")

SPOT_CODE = "Server.SpotInstanceTermination"
SPOT_MESSAGE = "Server.SpotInstanceTermination: Spot instance termination"
DEFAULT_NOTICE_S = 120.0  # EC2's two-minute warning


class InterruptError(Exception):
    """The instance cannot be interrupted (unknown, not spot, not running); ``status`` is HTTP's."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Interruption:
    """An interruption served: which instance, when its notice appeared and when EC2 acts."""

    instance_id: str
    action: str
    noticed: str
    time: str
    notice_s: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "action": self.action,
            "noticed": self.noticed,
            "time": self.time,
            "notice_s": self.notice_s,
            "state_reason": SPOT_CODE,
        }


class SpotInterrupter:
    """Serves notices and reclaims spot instances, by hand or by the seeded fault rule.

    ``runner`` serves the notice (``InstanceRunner.serve_notice``); ``changing`` is the state
    store's context for a change made outside a request (it holds the backend lock, then saves
    the change); ``now`` and ``timer`` can be replaced in tests.
    """

    def __init__(
        self,
        runner: Any,
        changing: Callable[..., Any],
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        timer: Callable[[float, Callable[[], None]], Any] | None = None,
    ) -> None:
        self.runner = runner
        self.changing = changing
        self.now = now
        self._timer = timer or _daemon_timer
        self._timers: list[Any] = []
        self._lock = threading.Lock()
        self.rules: list[FaultRule] = []
        self._rngs: dict[int, random.Random] = {}
        self.interruptions: list[Interruption] = []

    # ---- the fault rule --------------------------------------------------------------------

    def configure(self, faults_text: str) -> list[dict[str, Any]]:
        """Take the ``cloud:`` rules of an ``AWSAC_FAULTS`` text (others are not ours)."""
        rules = [r for r in parse_faults(faults_text) if r.service == CLOUD]
        with self._lock:
            self.rules = rules
            self._rngs = {i: random.Random(r.seed) for i, r in enumerate(rules)}
        return [self.describe(r) for r in rules]

    @staticmethod
    def describe(rule: FaultRule) -> dict[str, Any]:
        return {
            "rule": f"{rule.service}:{rule.operation}",
            "share": rule.share,
            "seed": rule.seed,
            "after": rule.after,
            "for": rule.seconds,
            "notice": rule.notice,
        }

    def launched(self, instances: list[Any]) -> None:
        """A reservation was launched: draw, per spot instance in launch order, whether and when.

        The draws come from one generator per rule seeded with its ``seed``, so the same launches
        get the same interruptions.
        """
        spot = sorted(
            (i for i in instances if getattr(i, "lifecycle", None) == "spot"),
            key=lambda i: int(i.ami_launch_index),
        )
        if not spot:
            return
        due: list[tuple[float, str, float]] = []
        with self._lock:
            for index, rule in enumerate(self.rules):
                rng = self._rngs[index]
                for instance in spot:
                    chosen = rng.random() < rule.share
                    at = rule.after + rng.random() * rule.seconds
                    if chosen:
                        due.append((at, instance.id, rule.notice))
        for at, instance_id, notice in due:
            log.info(
                "fault rule: interrupting %s %.1f s after launch (notice %g s)",
                instance_id,
                at,
                notice,
            )
            self._later(at, lambda i=instance_id, n=notice: self._by_rule(i, n))

    def _by_rule(self, instance_id: str, notice_s: float) -> None:
        try:
            self.interrupt(instance_id, notice_s)
        except InterruptError as exc:  # ended meanwhile: EC2 has nothing left to reclaim
            log.info("fault rule: not interrupting %s: %s", instance_id, exc)

    # ---- one interruption --------------------------------------------------------------------

    def interrupt(self, instance_id: str, notice_s: float = DEFAULT_NOTICE_S) -> Interruption:
        """Serve the notice now; terminate the instance ``notice_s`` seconds later."""
        if not 0 <= notice_s <= 3600:
            raise InterruptError(f"notice must be 0 to 3600 seconds, not {notice_s:g}", 400)
        with self.changing():
            instance = _find(instance_id)
            if getattr(instance, "lifecycle", None) != "spot":
                raise InterruptError(
                    f"{instance_id} is not a spot instance (it was launched without "
                    "InstanceMarketOptions MarketType=spot); EC2 interrupts only spot instances"
                )
            if instance._state.name not in ("pending", "running"):
                raise InterruptError(f"{instance_id} is {instance._state.name}, not running")
        noticed = self.now()
        notice = SpotNotice("terminate", noticed + timedelta(seconds=notice_s), noticed)
        if not self.runner.serve_notice(instance_id, notice):
            raise InterruptError(f"{instance_id} has not booted yet; interrupt it once it runs")
        served = Interruption(
            instance_id,
            notice.action,
            notice.rebalance()["noticeTime"],
            notice.instance_action()["time"],
            notice_s,
        )
        with self._lock:
            self.interruptions.append(served)
        log.info("spot notice for %s: terminate at %s", instance_id, served.time)
        self._later(notice_s, lambda: self.reclaim(instance_id))
        return served

    def reclaim(self, instance_id: str) -> bool:
        """EC2 takes the instance back: terminated, state reason Server.SpotInstanceTermination."""
        from moto.core.utils import utcnow
        from moto.ec2.models.instances import StateReason

        with self.changing(("ec2", _region_of(instance_id))):
            try:
                instance = _find(instance_id)
            except InterruptError:
                return False
            if instance._state.name in ("shutting-down", "terminated"):
                return False
            instance.terminate()  # the runner shuts its machine down
            instance._reason = f"Service initiated ({utcnow().strftime('%Y-%m-%d %H:%M:%S UTC')})"
            instance.state_reason = StateReason(SPOT_MESSAGE, SPOT_CODE)
        log.info("reclaimed spot instance %s", instance_id)
        return True

    # ---- timers -----------------------------------------------------------------------------

    def _later(self, seconds: float, action: Callable[[], None]) -> None:
        timer = self._timer(max(0.0, seconds), action)
        with self._lock:
            self._timers = [t for t in self._timers if getattr(t, "is_alive", lambda: True)()]
            self._timers.append(timer)

    def cancel_all(self) -> None:
        """Drop every pending notice and reclaim (service stop, reset)."""
        with self._lock:
            timers, self._timers = self._timers, []
            self.interruptions.clear()
        for timer in timers:
            cancel = getattr(timer, "cancel", None)
            if cancel is not None:
                cancel()


def _daemon_timer(seconds: float, action: Callable[[], None]) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.daemon = True
    timer.start()
    return timer


def _find(instance_id: str) -> Any:
    from moto.ec2.models import ec2_backends

    for backend in list(ec2_backends[ACCOUNT_ID].values()):
        for reservation in list(backend.reservations.values()):
            for instance in reservation.instances:
                if instance.id == instance_id:
                    return instance
    raise InterruptError(f"no instance {instance_id} in the local cloud", 404)


def _region_of(instance_id: str) -> str:
    try:
        return str(_find(instance_id).ec2_backend.region_name)
    except InterruptError:
        return "us-east-1"
