"""boto3 clients for the agent: region from the environment or metadata, botocore's retries,
fault hooks, and a count of the HTTP requests each operation sent.

The endpoint comes from ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_<SERVICE>``), passed to boto3
explicitly: boto3 reads these itself only from 1.28 on, and distributions ship older ones
(Debian 12: 1.26). Credentials come from the instance profile (boto3 reads the metadata service).
"""

from __future__ import annotations

import functools
import os
import threading
from collections import Counter
from typing import Any, Callable, Dict, Optional, Tuple

import boto3
import botocore.session

from . import faults
from .botoloader import share_loader
from .retry import botocore_config, describe, total_attempts

Log = Optional[Callable[[str], None]]


def endpoint_url(service: str) -> Optional[str]:
    """The endpoint set for ``service`` in the environment, as boto3 >= 1.28 would read it."""
    specific = os.environ.get("AWS_ENDPOINT_URL_" + service.upper().replace("-", "_"))
    return specific or os.environ.get("AWS_ENDPOINT_URL") or None


class Clients:
    """Lazily created boto3 clients sharing one session and region (boto3 clients are
    thread-safe, so the worker's threads share them).

    ``requests`` counts HTTP requests per ``"service Operation"`` (each botocore attempt is one),
    from a ``request-created`` hook; failed attempts are logged with their error.
    """

    def __init__(self, region: Optional[str] = None, log: Log = None) -> None:
        self.region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        self.session = boto3.session.Session(
            region_name=self.region, botocore_session=share_loader(botocore.session.Session())
        )
        self.log = log
        self.requests: Counter = Counter()
        self._lock = threading.Lock()
        self._clients: Dict[Tuple[str, Optional[int]], Any] = {}

    def client(self, service: str, total: Optional[int] = None) -> Any:
        """The client of ``service``; ``total`` asks for another bound on attempts per call."""
        key = (service, total)
        with self._lock:
            if key not in self._clients:
                c = self.session.client(
                    service, config=botocore_config(total), endpoint_url=endpoint_url(service)
                )
                faults.plan().install(c)
                sid = c.meta.service_model.service_id.hyphenize()
                c.meta.events.register(f"request-created.{sid}", self._count)
                c.meta.events.register(
                    f"needs-retry.{sid}",
                    functools.partial(self._attempt_failed, total or total_attempts()),
                )
                self._clients[key] = c
            return self._clients[key]

    def _count(self, request: Any = None, operation_name: str = "", **kwargs: Any) -> None:
        name = kwargs.get("event_name", "").split(".")
        service = name[1] if len(name) > 1 else "?"
        with self._lock:
            self.requests[f"{service} {operation_name}"] += 1

    def _attempt_failed(
        self,
        total: int,
        response: Any = None,
        attempts: int = 0,
        caught_exception: Any = None,
        operation: Any = None,
        request_dict: Any = None,
        **kwargs: Any,
    ) -> None:
        """Log a failed HTTP attempt (botocore's handler decides about the retry; this returns None)."""
        if self.log is None:
            return None
        if caught_exception is not None:
            why = describe(caught_exception)
        elif response is not None and response[0].status_code >= 300:
            err = (response[1] or {}).get("Error", {})
            why = f"{err.get('Code', response[0].status_code)}: {err.get('Message', '')}".rstrip(
                ": "
            )
        else:
            return None
        target = (request_dict or {}).get("url_path", "")
        op = getattr(operation, "name", "?")
        service = kwargs.get("event_name", "needs-retry.?").split(".")[1]
        self.log(f"  {service} {op} {target}: attempt {attempts} of {total} failed ({why})")
        return None

    @property
    def ec2(self) -> Any:
        return self.client("ec2")

    @property
    def s3(self) -> Any:
        return self.client("s3")

    @property
    def sdb(self) -> Any:
        return self.client("sdb")
