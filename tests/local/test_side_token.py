"""The local cloud's side endpoints obey only its owner: the token in an owner-only file."""

from __future__ import annotations

import json
import stat
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from awsac_tui.local import service
from awsac_tui.local.common import SIDE_PREFIX, SIDE_TOKEN_HEADER, side_token_path


def _raw(endpoint: str, name: str, payload: dict[str, Any] | None, token: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers[SIDE_TOKEN_HEADER] = token
    request = urllib.request.Request(
        endpoint + SIDE_PREFIX + name,
        data=json.dumps(payload).encode() if payload is not None else None,
        method="POST" if payload is not None else "GET",
        headers=headers,
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_token_file_is_readable_by_its_owner_only(local_cloud: Any) -> None:
    path = side_token_path(Path(local_cloud.state_dir) / "local")
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o600, oct(mode)
    assert len(path.read_text().strip()) >= 32


@pytest.mark.parametrize("token", [None, "", "not-the-token"])
@pytest.mark.parametrize(
    "name,payload",
    [
        ("health", None),
        ("status", None),
        ("config", {"boot_command": [sys.executable, "-c", "open('/tmp/pwned','w')"]}),
        ("reset", {}),
    ],
)
def test_a_side_request_without_the_owners_token_is_refused_with_403_and_not_run(
    local_cloud: Any, name: str, payload: dict[str, Any] | None, token: str | None
) -> None:
    before = service._side(local_cloud.endpoint, "health")
    assert _raw(local_cloud.endpoint, name, payload, token) == 403
    after = service._side(local_cloud.endpoint, "health")
    assert after["boot_command"] == before["boot_command"]
    assert after["boot_delay"] == before["boot_delay"]


def test_the_owners_client_sends_the_token_and_is_obeyed(local_cloud: Any) -> None:
    before = service._side(local_cloud.endpoint, "health")
    try:
        got = service.configure(local_cloud, boot_delay=0.25)
        assert got["boot_delay"] == 0.25
    finally:
        service.configure(local_cloud, boot_delay=before["boot_delay"])


def test_the_shutdown_grace_is_a_setting_and_a_bad_one_is_refused(local_cloud: Any) -> None:
    from awsac_tui.local.runner import KILL_GRACE_S

    try:
        assert service.configure(local_cloud, shutdown_grace=3.5)["shutdown_grace"] == 3.5
        with pytest.raises(service.LocalCloudError, match="shutdown_grace must be above 0"):
            service.configure(local_cloud, shutdown_grace=0)
    finally:
        assert (
            service.configure(local_cloud, shutdown_grace=KILL_GRACE_S)["shutdown_grace"]
            == KILL_GRACE_S
        )


def test_moto_api_stays_open_on_loopback_without_the_token(boto3_client: Any) -> None:
    """The emulated AWS API itself needs no token, as moto's does not (docs/local-cloud.md)."""
    assert "Buckets" in boto3_client("s3").list_buckets()
