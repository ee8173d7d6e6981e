"""Helpers of the conformance suite: raw signed Query requests (GET and POST) and their answers.

Each test states one documented behaviour of AWS (SimpleDB, EC2) that the local cloud must keep;
its name says the rule. The same rules are checked with the AWS CLI v1 and an older boto3 in their
own virtual environments (test_other_clients.py, marked slow).
"""

from __future__ import annotations

import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from botocore.auth import SigV2Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from awsac_tui.local.common import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY, REGION


@dataclass(frozen=True)
class Answer:
    """One raw answer: HTTP status, the XML root (namespaces dropped) and the body."""

    status: int
    root: ET.Element
    body: bytes

    def find(self, path: str) -> ET.Element | None:
        return self.root.find(path)

    def text(self, path: str) -> str | None:
        found = self.root.find(path)
        return None if found is None else found.text

    @property
    def error_code(self) -> str | None:
        return self.text(".//Errors/Error/Code")


def _strip_namespaces(root: ET.Element) -> ET.Element:
    for element in root.iter():
        if "}" in element.tag:
            element.tag = element.tag.split("}", 1)[1]
    return root


@dataclass(frozen=True)
class QueryClient:
    """Raw Query API requests signed as SDKs sign them: SigV2 (SimpleDB) or SigV4 (EC2)."""

    endpoint: str
    method: str  # GET or POST
    version: str = "2009-04-15"
    sigv4_service: str | None = None  # None: SigV2

    def __call__(self, action: str, **params: Any) -> Answer:
        fields = {"Action": action, "Version": self.version}
        fields.update({k.replace("__", "."): str(v) for k, v in params.items()})
        return self.send(fields)

    def send(self, fields: dict[str, str]) -> Answer:
        url = self.endpoint.rstrip("/") + "/"
        if self.method == "GET":
            request = AWSRequest(method="GET", url=url, params=fields)
        else:
            request = AWSRequest(
                method="POST",
                url=url,
                data=fields,
                headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
            )
        credentials = Credentials(DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY)
        if self.sigv4_service:
            SigV4Auth(credentials, self.sigv4_service, REGION).add_auth(request)
        else:
            SigV2Auth(credentials).add_auth(request)
        prepared = request.prepare()
        body = prepared.body
        raw = urllib.request.Request(
            prepared.url,
            data=body.encode() if isinstance(body, str) else body,
            method=self.method,
            headers=dict(prepared.headers),
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(raw, timeout=30) as response:
                status, data = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, data = exc.code, exc.read()
        return Answer(status, _strip_namespaces(ET.fromstring(data)), data)


def error_of(exc: Any) -> tuple[str, int]:
    """(code, HTTP status) of a botocore ClientError."""
    return exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"]
