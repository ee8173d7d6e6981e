"""IMDSv2 client: instance id, launch index, zone, region, instance type, user-data, and the
spot interruption notice and rebalance recommendation (as EC2 documents them: 404 until given).

The endpoint comes from ``AWS_EC2_METADATA_SERVICE_ENDPOINT`` (default http://169.254.169.254/),
as boto3 reads it, so the local cloud's per-instance metadata endpoint works unchanged.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from typing import Any, Dict, Optional

from .errors import CloudError

DEFAULT_ENDPOINT = "http://169.254.169.254/"
TOKEN_TTL_SECONDS = 21600


class ImdsError(CloudError):
    """The instance metadata service could not be reached or answered an error."""


class Imds:
    """A small synchronous IMDSv2 client with a token cache and retries."""

    def __init__(
        self,
        endpoint: Optional[str] = None,
        timeout: float = 5.0,
        attempts: int = 5,
        backoff: float = 0.5,
    ) -> None:
        ep = endpoint or os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") or DEFAULT_ENDPOINT
        self.endpoint = ep if ep.endswith("/") else ep + "/"
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self._token: Optional[str] = None
        self._token_expires = 0.0

    def _request(
        self, method: str, path: str, headers: Dict[str, str], attempts: Optional[int] = None
    ) -> Optional[bytes]:
        url = self.endpoint + path.lstrip("/")
        last: Optional[BaseException] = None
        attempts = attempts or self.attempts
        for attempt in range(1, attempts + 1):
            req = urllib.request.Request(url, method=method, headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return resp.read()
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    return None
                if exc.code == 401 and "X-aws-ec2-metadata-token" in headers:
                    self._token = None
                    headers = dict(headers, **{"X-aws-ec2-metadata-token": self.token()})
                    last = exc
                elif exc.code < 500 and exc.code != 429:
                    raise ImdsError(
                        f"instance metadata {url}: HTTP {exc.code} {exc.reason}"
                    ) from exc
                else:
                    last = exc
            except (urllib.error.URLError, OSError) as exc:
                last = exc
            if attempt < attempts:
                time.sleep(self.backoff * 2 ** (attempt - 1))
        raise ImdsError(
            f"instance metadata {url} not reachable after {attempts} attempts: {last} "
            "(is this an EC2 instance? set AWS_EC2_METADATA_SERVICE_ENDPOINT otherwise)"
        )

    def token(self) -> str:
        """An IMDSv2 session token (cached until shortly before it expires)."""
        if self._token and time.monotonic() < self._token_expires:
            return self._token
        body = self._request(
            "PUT",
            "latest/api/token",
            {"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_SECONDS)},
        )
        if not body:
            raise ImdsError(f"instance metadata {self.endpoint}: no IMDSv2 token issued")
        self._token = body.decode("utf-8").strip()
        self._token_expires = time.monotonic() + TOKEN_TTL_SECONDS - 60
        return self._token

    def get(self, path: str, attempts: Optional[int] = None) -> Optional[str]:
        """The text at ``path`` (relative to the endpoint root), or None if it does not exist."""
        body = self._request("GET", path, {"X-aws-ec2-metadata-token": self.token()}, attempts)
        return None if body is None else body.decode("utf-8")

    def get_json(self, path: str, attempts: Optional[int] = None) -> Optional[Any]:
        text = self.get(path, attempts)
        if text is None:
            return None
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ImdsError(f"instance metadata {path}: not JSON ({exc})") from exc

    def _meta(self, name: str) -> str:
        value = self.get(f"latest/meta-data/{name}")
        if value is None:
            raise ImdsError(
                f"instance metadata has no {name} (at {self.endpoint}latest/meta-data/{name})"
            )
        return value.strip()

    def instance_id(self) -> str:
        return self._meta("instance-id")

    def launch_index(self) -> int:
        value = self._meta("ami-launch-index")
        if not value.isdigit():
            raise ImdsError(f"instance metadata ami-launch-index is not a number: {value!r}")
        return int(value)

    def availability_zone(self) -> str:
        return self._meta("placement/availability-zone")

    def region(self) -> str:
        value = self.get("latest/meta-data/placement/region")
        if value and value.strip():
            return value.strip()
        az = self.availability_zone()
        return az[:-1] if az and az[-1].isalpha() else az

    def instance_type(self) -> str:
        return self._meta("instance-type")

    def user_data(self) -> Optional[str]:
        """The instance's user-data as text, or None when it has none (404)."""
        body = self._request("GET", "latest/user-data", {"X-aws-ec2-metadata-token": self.token()})
        if body is None:
            return None
        return body.decode("utf-8", errors="replace")

    # ---- spot -------------------------------------------------------------------------------

    def life_cycle(self) -> Optional[str]:
        """``spot``, ``on-demand`` or ``scheduled``; None where the metadata has no such entry."""
        value = self.get("latest/meta-data/instance-life-cycle")
        return value.strip() if value else None

    def spot_instance_action(self) -> Optional[Dict[str, Any]]:
        """The spot interruption notice, ``{"action": "terminate"|"stop"|"hibernate", "time":
        "2026-05-09T12:04:31Z"}``, or None while there is none (EC2 answers 404 until then).
        One quick try: the caller polls every few seconds."""
        return _notice(self.get_json("latest/meta-data/spot/instance-action", attempts=1))

    def rebalance_recommendation(self) -> Optional[Dict[str, Any]]:
        """``{"noticeTime": "..."}`` once EC2 recommends a rebalance, else None (404)."""
        return _notice(
            self.get_json("latest/meta-data/events/recommendations/rebalance", attempts=1)
        )


def _notice(data: Any) -> Optional[Dict[str, Any]]:
    return data if isinstance(data, dict) and data else None
