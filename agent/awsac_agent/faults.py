"""Fault injection for tests: ``AWSAC_FAULTS`` makes chosen cloud calls fail before they are sent.

``AWSAC_FAULTS='s3:PutObject:fail=2:InternalError,sdb:PutAttributes:skip=3:fail=1:ServiceUnavailable'``
is a comma-separated list of rules ``service:Operation[:key=value...][:ErrorCode]``: ``match=TEXT``
only counts calls whose request URL or body contains TEXT (e.g. an S3 key part), ``skip=N`` lets
the first N matching calls through, ``fail=N`` then fails the next N (default 1), ``status=NNN``
sets the HTTP status (default 503 for ServiceUnavailable/SlowDown, 500 otherwise). Operation ``*``
matches every operation of the service. In the agent (boto3) the failure is an HTTP answer, given
by a ``before-send`` hook in place of the server's: botocore parses it and retries it exactly as a
real one, so each botocore attempt counts as one matching call (``fail=2`` is absorbed by a
client allowed 4 attempts; ``for=30`` outlasts them). In the client (aiobotocore, ``asynchronous``)
it is raised before the call by a ``before-call`` hook, once per call.

``AWSAC_FAULTS_LOG=PATH`` appends one line per injected fault (``service Operation what``) to
PATH as it happens, so a test can wait for "this call is being held" instead of sleeping.

More options: ``for=S`` fails every matching call during S seconds from the first one (after
``skip``) instead of counting; ``until=PATH`` ends that window early, as soon as the file PATH
exists (a test ends an outage when it has seen what it waits for, instead of waiting one out);
``delay=S`` holds each chosen call S seconds first (without an error code a delay-only rule lets
the call through). Rules of the pseudo-service ``agent`` act on the
agent itself at a named step: ``agent:kill:step=run[:after=S]`` SIGKILLs the worker,
``agent:interrupt:step=run[:after=S]`` terminates the instance with no tear down (a spot
interruption), ``agent:hang:job=N`` makes job N hang. Besides ``AWSAC_FAULTS``, the agent on the
local cloud reads a session's own rules from ``awsac_faults.cfg`` in the session archive. Rules of
the pseudo-service ``cloud`` are the local cloud's own (awsac_tui/local/spot.py):
``cloud:spot-interrupt:share=F[:seed=N][:after=S][:for=S][:notice=S]`` interrupts that share of
the spot instances launched, each at a seeded random time between ``after`` and ``after + for``
seconds after its launch, with ``notice`` seconds of notice (default 120, as EC2).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple

from .errors import FormatError

ENV = "AWSAC_FAULTS"
LOG_ENV = "AWSAC_FAULTS_LOG"
SESSION_FILE = "awsac_faults.cfg"
AGENT = "agent"
AGENT_ACTIONS = ("kill", "interrupt", "hang")
CLOUD = "cloud"  # rules the local cloud itself acts on (awsac_tui/local/spot.py)
CLOUD_ACTIONS = ("spot-interrupt",)
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
    seconds: float = 0.0  # for=S: fail every matching call during S seconds
    until: str = ""  # until=PATH: the for=S window ends early once the file PATH exists
    delay: float = 0.0  # delay=S: hold each chosen call S seconds
    step: str = ""  # agent rules: the step they act at
    after: float = 0.0  # agent rules: seconds into the step
    job: int = 0  # agent:hang: the job that hangs
    share: float = 0.0  # cloud:spot-interrupt: the share of spot instances interrupted (0..1)
    seed: int = 0  # cloud:spot-interrupt: which ones, and when (a seeded draw per launch)
    notice: float = 120.0  # cloud:spot-interrupt: seconds of notice before the termination

    @property
    def delay_only(self) -> bool:
        return self.delay > 0 and self.code == ""

    def matches(self, service_id: str, operation: str, request: str = "") -> bool:
        if self.service != service_id or self.operation not in ("*", operation):
            return False
        return not self.match or self.match in request


def parse_faults(text: str) -> List[FaultRule]:
    """Parse an ``AWSAC_FAULTS`` value; an unknown form is a FormatError naming the rule.

    Rules are separated by commas or new lines; ``#`` starts a comment (for ``awsac_faults.cfg``).
    """
    rules: List[FaultRule] = []
    lines = [line.split("#", 1)[0] for line in (text or "").splitlines()]
    for raw in ",".join(lines).split(","):
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
                if k in ("fail", "skip", "status", "job", "seed"):
                    if not v.isdigit():
                        raise FormatError(f"{ENV}: {k}={v!r} in rule {raw!r} must be a number")
                    opts[k] = int(v)
                elif k in ("for", "delay", "after", "notice", "share"):
                    try:
                        opts["seconds" if k == "for" else k] = float(v)
                    except ValueError:
                        raise FormatError(
                            f"{ENV}: {k}={v!r} in rule {raw!r} must be a number of seconds"
                        ) from None
                elif k == "code":
                    code = v
                elif k in ("match", "step", "until"):
                    opts[k] = v
                else:
                    raise FormatError(
                        f"{ENV}: unknown option {k!r} in rule {raw!r} (use fail, skip, status, "
                        "code, match, for, until, delay, step, after, job, share, seed, notice)"
                    )
            elif p:
                code = p
        if service == AGENT:
            if parts[1] not in AGENT_ACTIONS:
                raise FormatError(
                    f"{ENV}: rule {raw!r}: the agent can {', '.join(AGENT_ACTIONS)}, not {parts[1]!r}"
                )
            if parts[1] == "hang" and not opts.get("job"):
                raise FormatError(f"{ENV}: rule {raw!r} needs job=N (the job that hangs)")
            if parts[1] != "hang" and not opts.get("step"):
                raise FormatError(f"{ENV}: rule {raw!r} needs step=NAME (e.g. step=run)")
            code = code or ""
        elif service == CLOUD:
            if parts[1] not in CLOUD_ACTIONS:
                raise FormatError(
                    f"{ENV}: rule {raw!r}: the local cloud can {', '.join(CLOUD_ACTIONS)}, "
                    f"not {parts[1]!r}"
                )
            if not 0.0 < opts.get("share", 0.0) <= 1.0:
                raise FormatError(
                    f"{ENV}: rule {raw!r} needs share=F, the share of spot instances to interrupt "
                    "(more than 0, at most 1)"
                )
            code = code or ""
        elif code is None:
            code = "" if opts.get("delay") else "InternalError"
        if opts.get("until") and not opts.get("seconds"):
            raise FormatError(
                f"{ENV}: rule {raw!r}: until=PATH ends a for=S window; give for=S too (its bound)"
            )
        status = opts.pop("status", 503 if code in ("ServiceUnavailable", "SlowDown") else 500)
        rules.append(FaultRule(service, parts[1], code=code, status=status, **opts))
    return rules


class _FakeHttp:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        self.headers: Dict[str, str] = {}
        self.content = b""
        self.raw = None


class _Body:
    """The ``raw`` of a botocore AWSResponse: a body that streams once."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **kwargs: Any) -> Any:
        yield self.data


def _error_body(service_id: str, code: str, message: str) -> bytes:
    """An error document in the service's own protocol (S3: REST-XML; EC2, SimpleDB: Query)."""
    from xml.sax.saxutils import escape

    inner = f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
    if service_id == "s3":
        return f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>{inner}</Error>'.encode()
    return (
        f'<?xml version="1.0"?>\n<Response><Errors><Error>{inner}</Error></Errors>'
        "<RequestID>awsac-faults</RequestID></Response>"
    ).encode()


def _http_answer(service_id: str, url: str, rule: "FaultRule") -> Any:
    from botocore.awsrequest import AWSResponse

    body = _error_body(service_id, rule.code, f"injected by {ENV}")
    headers = {"Content-Type": "text/xml", "Content-Length": str(len(body))}
    return AWSResponse(url, rule.status, headers, _Body(body))


class FaultPlan:
    """The process-wide fault counters; ``install(client)`` hooks a boto3 (or aiobotocore) client."""

    def __init__(self, rules: List[FaultRule]) -> None:
        self.rules = rules
        self._seen = [0] * len(rules)
        self._first: List[Optional[float]] = [None] * len(rules)
        self._fired: Set[int] = set()
        self.injected: List[Tuple[str, str, str]] = []
        self._lock = threading.Lock()

    def extend(self, rules: List[FaultRule]) -> None:
        """Add rules (a session's ``awsac_faults.cfg``) with fresh counters."""
        with self._lock:
            self.rules = self.rules + list(rules)
            self._seen += [0] * len(rules)
            self._first += [None] * len(rules)

    def _decide(self, service_id: str, operation: str, request: str = "") -> Optional[FaultRule]:
        with self._lock:
            for i, rule in enumerate(self.rules):
                if rule.service == AGENT or not rule.matches(service_id, operation, request):
                    continue
                n = self._seen[i]
                self._seen[i] += 1
                if n < rule.skip:
                    continue
                if rule.seconds > 0:
                    now = time.monotonic()
                    if self._first[i] is None:
                        self._first[i] = now
                    chosen = now - (self._first[i] or now) < rule.seconds and not (
                        rule.until and os.path.exists(rule.until)
                    )
                else:
                    chosen = n < rule.skip + rule.fail
                if chosen:
                    what = (service_id, operation, rule.code or f"delay {rule.delay:g}s")
                    self.injected.append(what)
                    _note(what)
                    return rule
        return None

    def _answer(self, rule: FaultRule) -> Optional[Tuple[_FakeHttp, Dict[str, Any]]]:
        if rule.delay_only:
            return None
        parsed = {
            "Error": {"Code": rule.code, "Message": f"injected by {ENV}"},
            "ResponseMetadata": {"HTTPStatusCode": rule.status, "RetryAttempts": 0},
        }
        return _FakeHttp(rule.status), parsed

    def install(self, client: Any, asynchronous: bool = False) -> Any:
        """Register the hook on ``client`` (a no-op without rules for its service); returns it.

        ``asynchronous`` for aiobotocore clients: the hook is a coroutine, so a delay does not
        block the event loop.
        """
        service_id = client.meta.service_model.service_id.hyphenize()
        if not any(r.service == service_id for r in self.rules):
            return client

        if asynchronous:
            import asyncio

            async def ahook(
                model: Any, params: Any = None, **kwargs: Any
            ) -> Optional[Tuple[_FakeHttp, Dict[str, Any]]]:
                rule = self._decide(service_id, model.name, _request_text(params))
                if rule is None:
                    return None
                if rule.delay:
                    await asyncio.sleep(rule.delay)
                return self._answer(rule)

            client.meta.events.register(f"before-call.{service_id}", ahook)
            return client

        def send_hook(request: Any = None, event_name: str = "", **kwargs: Any) -> Any:
            operation = event_name.split(".")[2] if event_name.count(".") >= 2 else ""
            rule = self._decide(service_id, operation, _sent_text(request))
            if rule is None:
                return None
            if rule.delay:
                time.sleep(rule.delay)
            if rule.delay_only:
                return None
            return _http_answer(service_id, getattr(request, "url", ""), rule)

        client.meta.events.register(f"before-send.{service_id}", send_hook)
        return client

    # ---- agent rules -------------------------------------------------------------------------
    def step_rules(self, step: str, elapsed: float = 0.0) -> List[FaultRule]:
        """Agent rules (kill, interrupt) due at ``step`` after ``elapsed`` seconds; each fires once."""
        due: List[FaultRule] = []
        with self._lock:
            for i, rule in enumerate(self.rules):
                if rule.service != AGENT or rule.step != step or i in self._fired:
                    continue
                if elapsed >= rule.after:
                    self._fired.add(i)
                    self.injected.append((AGENT, rule.operation, step))
                    due.append(rule)
        return due

    def hangs(self, jobnr: int) -> bool:
        """Whether an ``agent:hang:job=N`` rule makes this job hang."""
        return any(
            r.service == AGENT and r.operation == "hang" and r.job == jobnr for r in self.rules
        )


def _note(what: Tuple[str, str, str]) -> None:
    """Append an injected fault to ``AWSAC_FAULTS_LOG`` (if set) before it takes effect."""
    path = os.environ.get(LOG_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(" ".join(what) + "\n")


def _sent_text(request: Any) -> str:
    """URL and (text) body of a prepared botocore request, for ``match=``."""
    if request is None:
        return ""
    body = getattr(request, "body", None)
    if isinstance(body, bytes):
        body = body[:4096].decode("utf-8", errors="replace")
    elif not isinstance(body, str):
        body = ""  # a stream (an upload): not read here
    from urllib.parse import unquote_plus

    return f"{unquote_plus(getattr(request, 'url', '') or '')} {unquote_plus(body)}"


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


def load_session_file(session_dir: Path) -> List[FaultRule]:
    """Add the rules of ``awsac_faults.cfg`` in an extracted session archive to the plan.

    Only on the local cloud (``AWSAC_DEVICE_PROVIDER=local``): on a real cloud the file is ignored.
    """
    path = Path(session_dir) / SESSION_FILE
    if os.environ.get("AWSAC_DEVICE_PROVIDER") != "local" or not path.is_file():
        return []
    rules = parse_faults(path.read_text(encoding="utf-8"))
    plan().extend(rules)
    return rules
