"""boto3 clients for the agent: region from the environment or metadata, retries, fault hooks.

The endpoint comes from ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_<SERVICE>``), passed to boto3
explicitly: boto3 reads these itself only from 1.28 on, and distributions ship older ones
(Debian 12: 1.26). Credentials come from the instance profile (boto3 reads the metadata service).
"""

from __future__ import annotations

import os
from typing import Any, Optional

import boto3
from botocore.config import Config

from . import faults

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4}, connect_timeout=10, read_timeout=60
)


def endpoint_url(service: str) -> Optional[str]:
    """The endpoint set for ``service`` in the environment, as boto3 >= 1.28 would read it."""
    specific = os.environ.get("AWS_ENDPOINT_URL_" + service.upper().replace("-", "_"))
    return specific or os.environ.get("AWS_ENDPOINT_URL") or None


class Clients:
    """Lazily created boto3 clients sharing one session and region."""

    def __init__(self, region: Optional[str] = None) -> None:
        self.region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        self.session = boto3.session.Session(region_name=self.region)
        self._clients: dict = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            c = self.session.client(service, config=_CONFIG, endpoint_url=endpoint_url(service))
            self._clients[service] = faults.plan().install(c)
        return self._clients[service]

    @property
    def ec2(self) -> Any:
        return self.client("ec2")

    @property
    def s3(self) -> Any:
        return self.client("s3")

    @property
    def sdb(self) -> Any:
        return self.client("sdb")
