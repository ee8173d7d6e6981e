"""Retry with exponential backoff for cloud calls that hit throttling, 5xx or connection errors."""

from __future__ import annotations

import os
import random
import time
from typing import Callable, Optional, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

T = TypeVar("T")

RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "SlowDown",
        "ServiceUnavailable",
        "Unavailable",
        "InternalError",
        "InternalFailure",
        "RequestTimeout",
        "RequestTimeoutException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
    }
)


def is_retryable(exc: BaseException) -> bool:
    """Whether a failed call is worth repeating (throttling, server error, lost connection).

    Wrapped errors (boto3's S3UploadFailedError around a ClientError) are judged by their cause.
    """
    inner = exc.__cause__ or exc.__context__
    if type(exc).__name__ in ("S3UploadFailedError", "RetriesExceededError") and inner is not None:
        return is_retryable(inner) or type(exc).__name__ == "RetriesExceededError"
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return err.get("Code") in RETRYABLE_CODES or int(status) >= 500
    if isinstance(exc, BotoConnectionError):
        return True
    if isinstance(exc, BotoCoreError):
        return "timeout" in type(exc).__name__.lower() or "connection" in type(exc).__name__.lower()
    return isinstance(exc, (ConnectionError, TimeoutError))


def base_delay() -> float:
    """First backoff delay in seconds (``AWSAC_RETRY_BASE_SECONDS``, default 1)."""
    try:
        return float(os.environ.get("AWSAC_RETRY_BASE_SECONDS", "1"))
    except ValueError:
        return 1.0


def retry(
    fn: Callable[[], T],
    what: str,
    log: Optional[Callable[[str], None]] = None,
    attempts: int = 6,
    delay: Optional[float] = None,
    max_delay: float = 30.0,
) -> T:
    """Call ``fn`` until it succeeds, retrying retryable errors with jittered exponential backoff."""
    d = base_delay() if delay is None else delay
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - filtered by is_retryable, re-raised otherwise
            if attempt >= attempts or not is_retryable(exc):
                raise
            wait = min(max_delay, d * (2 ** (attempt - 1))) * (0.5 + random.random() / 2)
            if log:
                log(
                    f"  {what}: attempt {attempt} failed ({describe(exc)}); retrying in {wait:.1f} s"
                )
            time.sleep(wait)
    raise AssertionError("unreachable")


def describe(exc: BaseException) -> str:
    """A one-line description of a cloud error."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'Error')}: {err.get('Message', '')}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}"
