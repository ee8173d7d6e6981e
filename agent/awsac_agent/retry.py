"""The agent's one retry layer is botocore's own: its configuration, and how to read a failure.

Every boto3 client of the agent gets ``botocore_config()``: retry mode ``standard`` (or
``adaptive``, ``AWSAC_RETRY_MODE``) with a bounded total of HTTP attempts per call
(``AWSAC_MAX_ATTEMPTS``, default 4). Nothing retries on top of it: a status write that still
fails is handed back to the background writer (store.StatusWriter), which tries the newest record
again later without holding up the worker's loop.
"""

from __future__ import annotations

import os
from typing import Any, Optional

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

RETRY_MODES = ("standard", "adaptive")
DEFAULT_RETRY_MODE = "standard"
DEFAULT_TOTAL_ATTEMPTS = 4

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


def retry_mode() -> str:
    """botocore's retry mode for the agent (``AWSAC_RETRY_MODE``: standard or adaptive)."""
    mode = os.environ.get("AWSAC_RETRY_MODE", DEFAULT_RETRY_MODE).strip().lower()
    return mode if mode in RETRY_MODES else DEFAULT_RETRY_MODE


def total_attempts() -> int:
    """HTTP requests botocore may send for one call, first included (``AWSAC_MAX_ATTEMPTS``)."""
    try:
        n = int(os.environ.get("AWSAC_MAX_ATTEMPTS", DEFAULT_TOTAL_ATTEMPTS))
    except ValueError:
        return DEFAULT_TOTAL_ATTEMPTS
    return max(1, n)


def botocore_config(total: Optional[int] = None, **extra: Any) -> Config:
    """The Config of every agent client: the one retry layer, and bounded timeouts."""
    return Config(
        retries={"mode": retry_mode(), "total_max_attempts": total or total_attempts()},
        connect_timeout=10,
        read_timeout=60,
        **extra,
    )


def requests_made(exc: BaseException) -> Optional[int]:
    """How many HTTP requests botocore sent for a call that failed with ``exc`` (None: unknown)."""
    if isinstance(exc, ClientError):
        meta = exc.response.get("ResponseMetadata") or {}
        if "RetryAttempts" in meta:
            return int(meta["RetryAttempts"]) + 1
    return None


def is_retryable(exc: BaseException) -> bool:
    """Whether a failed call is worth repeating later (throttling, server error, lost connection).

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


def error_code(exc: BaseException) -> str:
    """The AWS error code of a failed call ('' when it is not a ClientError)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def describe(exc: BaseException) -> str:
    """A one-line description of a cloud error."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'Error')}: {err.get('Message', '')}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}"
