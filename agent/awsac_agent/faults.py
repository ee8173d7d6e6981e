"""Fault injection for tests: ``AWSAC_FAULTS`` makes chosen cloud calls fail before they are sent.

``AWSAC_FAULTS='s3:PutObject:fail=2:InternalError,sdb:PutAttributes:skip=3:fail=1:ServiceUnavailable'``
is a comma-separated list of rules ``service:Operation[:key=value...][:ErrorCode]``: ``match=TEXT``
only counts calls whose request URL or body contains TEXT (e.g. an S3 key part), ``skip=N`` lets
the first N matching calls through, ``fail=N`` then fails the next N (default 1), ``status=NNN``
sets the HTTP status (default 503 for ServiceUnavailable/SlowDown, 500 otherwise). Operation ``*``
matches every operation of the service. The failure is raised as botocore raises a real one
(a ClientError subclass), via a ``before-call`` event hook, so botocore's own retries do not hide it.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from .errors import FormatError

ENV = "AWSAC_FAULTS"
_SERVICE_IDS = {"sdb": "simpledb", "simpledb": "simpledb", "s3": "s3", "ec2": "ec2", "sts": "sts"}


@dataclass(frozen=True)
class FaultRule:
    """One injected fault: after ``skip`` matching calls, the next ``fail`` calls fail with ``code``."""

    service: str
    operation: str
    fail: int = 1
    skip: int = 0
    code: str = "InternalError"
    status: int = 500
    match: str = ""

    def matches(self, service_id: str, operation: str, request: str = "") -> bool:
        if self.service != service_id or self.operation not in ("*", operation):
            return False
        return not self.match or self.match in request


def parse_faults(text: str) -> List[FaultRule]:
    """Parse an ``AWSAC_FAULTS`` value; an unknown form is a FormatError naming the rule."""
    rules: List[FaultRule] = []
    for raw in (text or "").split(","):
        raw = raw.strip()
        if not raw:
            continue
        parts = raw.split(":")
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise FormatError(f"{ENV}: rule {raw!r} must start with service:Operation")
        service = _SERVICE_IDS.get(parts[0].lower(), parts[0].lower())
        opts: Dict[str, Any] = {}
        code: Optional[str] = None
        for p in parts[2:]:
            if "=" in p:
                k, v = p.split("=", 1)
                if k in ("fail", "skip", "status"):
                    if not v.isdigit():
                        raise FormatError(f"{ENV}: {k}={v!r} in rule {raw!r} must be a number")
                    opts[k] = int(v)
                elif k == "code":
                    code = v
                elif k == "match":
                    opts["match"] = v
                else:
                    raise FormatError(
                        f"{ENV}: unknown option {k!r} in rule {raw!r} (use fail, skip, status, code, match)"
                    )
            elif p:
                code = p
        code = code or "InternalError"
        status = opts.pop("status", 503 if code in ("ServiceUnavailable", "SlowDown") else 500)
        rules.append(FaultRule(service, parts[1], code=code, status=status, **opts))
    return rules


class _FakeHttp:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        self.headers: Dict[str, str] = {}
        self.content = b""
        self.raw = None


class FaultPlan:
    """The process-wide fault counters; ``install(client)`` hooks a boto3 client."""

    def __init__(self, rules: List[FaultRule]) -> None:
        self.rules = rules
        self._seen = [0] * len(rules)
        self.injected: List[Tuple[str, str, str]] = []
        self._lock = threading.Lock()

    def _decide(self, service_id: str, operation: str, request: str = "") -> Optional[FaultRule]:
        with self._lock:
            for i, rule in enumerate(self.rules):
                if rule.matches(service_id, operation, request):
                    n = self._seen[i]
                    self._seen[i] += 1
                    if rule.skip <= n < rule.skip + rule.fail:
                        self.injected.append((service_id, operation, rule.code))
                        return rule
        return None

    def install(self, client: Any) -> Any:
        """Register the hook on ``client`` (a no-op without rules); returns the client."""
        if not self.rules:
            return client
        service_id = client.meta.service_model.service_id.hyphenize()
        if not any(r.service == service_id for r in self.rules):
            return client

        def hook(
            model: Any, params: Any = None, **kwargs: Any
        ) -> Optional[Tuple[_FakeHttp, Dict[str, Any]]]:
            rule = self._decide(service_id, model.name, _request_text(params))
            if rule is None:
                return None
            parsed = {
                "Error": {"Code": rule.code, "Message": f"injected by {ENV}"},
                "ResponseMetadata": {"HTTPStatusCode": rule.status, "RetryAttempts": 0},
            }
            return _FakeHttp(rule.status), parsed

        client.meta.events.register(f"before-call.{service_id}", hook)
        return client


def _request_text(params: Any) -> str:
    """URL and (text) body of a botocore request dict, for ``match=``."""
    if not isinstance(params, dict):
        return ""
    body = params.get("body")
    if isinstance(body, dict):
        body = "&".join(f"{k}={v}" for k, v in body.items())
    elif isinstance(body, bytes):
        body = body[:4096].decode("utf-8", errors="replace")
    elif not isinstance(body, str):
        body = ""
    return f"{params.get('url_path', '')} {params.get('url', '')} {body}"


_PLAN: Optional[FaultPlan] = None


def plan() -> FaultPlan:
    """The process-wide plan, read once from ``AWSAC_FAULTS``."""
    global _PLAN
    if _PLAN is None:
        _PLAN = FaultPlan(parse_faults(os.environ.get(ENV, "")))
    return _PLAN


def reset(text: Optional[str] = None) -> FaultPlan:
    """Replace the process-wide plan (tests); ``None`` re-reads ``AWSAC_FAULTS``."""
    global _PLAN
    _PLAN = FaultPlan(parse_faults(os.environ.get(ENV, "") if text is None else text))
    return _PLAN
