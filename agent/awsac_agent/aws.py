"""boto3 clients for the agent: region from the environment or metadata, retries, fault hooks.

The endpoint comes from boto3's own ``AWS_ENDPOINT_URL`` handling, credentials from the
instance profile (boto3 reads them from the metadata service).
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


class Clients:
    """Lazily created boto3 clients sharing one session and region."""

    def __init__(self, region: Optional[str] = None) -> None:
        self.region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        self.session = boto3.session.Session(region_name=self.region)
        self._clients: dict = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            c = self.session.client(service, config=_CONFIG)
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
