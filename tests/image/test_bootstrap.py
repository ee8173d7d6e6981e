"""The stock-image user-data: small, POSIX-sh clean, and it really runs the boot step (moto S3
plus a stand-in IMDSv2 endpoint, the real awsac-processjobs.pyz and the real boot step)."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from awsac_agent.bootstrap import WORKER_NAME, stock_userdata
from awsac_agent.errors import FormatError
from awsac_agent.userdata import MAX_USERDATA_BYTES, UserData, parse_userdata

from .helpers import need_tool

SESSION = "251123_1845--stock--ab12"
UD = UserData(SESSION, "awsac-test-bucket", "sessionarchive.tar.bz2", 2, {"store": "s3"})


def test_stock_userdata_is_small_and_carries_the_session_string() -> None:
    text = stock_userdata(UD)
    assert text.startswith("#!/bin/sh\n")
    assert len(text.encode()) < MAX_USERDATA_BYTES // 2  # well under EC2's 16 KB
    assert parse_userdata(text) == UD
    assert f"KEY='{SESSION}/sessionarchive.tar.bz2'" in text
    for secret in ("AWS_SECRET_ACCESS_KEY", "aws_access_key_id", "AKIA"):
        assert secret not in text


def test_stock_userdata_rejects_unsafe_values() -> None:
    with pytest.raises(FormatError):
        stock_userdata(UserData(SESSION, "bucket';reboot;'", "a.tar.bz2", 1))


def test_stock_userdata_sh_n(tmp_path: Path) -> None:
    script = tmp_path / "userdata.sh"
    script.write_text(stock_userdata(UD))
    shells = [need_tool("sh")] + [s for s in (shutil.which("dash"), shutil.which("bash")) if s]
    for shell in shells:
        r = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True)
        assert r.returncode == 0, f"{shell} -n: {r.stderr}"


def test_stock_userdata_shellcheck(tmp_path: Path) -> None:
    shellcheck = need_tool("shellcheck")
    script = tmp_path / "userdata.sh"
    script.write_text(stock_userdata(UD))
    r = subprocess.run([shellcheck, str(script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Imds(BaseHTTPRequestHandler):
    """IMDSv2 as far as the bootstrap and the boot step use it."""

    user_data = ""
    token = "test-token"

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, code: int, body: str) -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self) -> None:  # noqa: N802
        if self.path == "/latest/api/token":
            self._send(200, self.token)
        else:
            self._send(404, "")

    def do_GET(self) -> None:  # noqa: N802
        if self.headers.get("X-aws-ec2-metadata-token") != self.token:
            self._send(401, "")
            return
        answers = {
            "/latest/user-data": self.user_data,
            "/latest/meta-data/placement/region": "us-east-1",
            "/latest/meta-data/placement/availability-zone": "us-east-1a",
            "/latest/meta-data/instance-id": "i-0123456789abcdef0",
            "/latest/meta-data/ami-launch-index": "0",
        }
        if self.path in answers:
            self._send(200, answers[self.path])
        else:
            self._send(404, "")


@pytest.fixture
def imds() -> Iterator[tuple[str, type[_Imds]]]:
    handler = type("Imds", (_Imds,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _moto_kwargs(endpoint: str) -> dict[str, str]:
    return {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }


def _instance_env(moto_endpoint: str, imds_endpoint: str, work: Path) -> dict[str, str]:
    """What the script sees on the instance: no region, credentials as from the instance profile."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHONPATH"))}
    env.update(
        AWS_ENDPOINT_URL=moto_endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_EC2_METADATA_SERVICE_ENDPOINT=imds_endpoint,
        AWSAC_WORK_DIR=str(work),
        AWSAC_BOOTSTRAP_FOREGROUND="1",
    )
    return env


def _session_archive(tmp_path: Path, marker: Path) -> bytes:
    """A session archive with the real worker zipapp and a session autorun that leaves a marker."""
    from awsac_agent.archive import build_processjobs_pyz

    pyz = build_processjobs_pyz(tmp_path / WORKER_NAME).read_bytes()
    autorun = (
        "#!/bin/sh\n"
        f'echo "session=$AWSAC_SESSION_ID region=$AWS_DEFAULT_REGION python=$AWSAC_PYTHON" > {marker}\n'
    ).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:bz2") as tar:
        for name, data in ((WORKER_NAME, pyz), ("awsac_all_instances_autorun.sh", autorun)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.slow
def test_stock_userdata_runs_the_boot_step(
    tmp_path: Path, imds: tuple[str, type[_Imds]], moto_endpoint: str
) -> None:
    """Run the user-data script as cloud-init would (boto3 is already importable here, so the
    package install is skipped): it fetches the worker from S3 with the region from IMDSv2 and
    runs the agent's real boot step from it, which runs the session's autorun script."""
    import boto3

    endpoint, handler = imds
    marker = tmp_path / "marker"
    text = stock_userdata(UD)
    handler.user_data = text
    s3 = boto3.client("s3", **_moto_kwargs(moto_endpoint))
    s3.create_bucket(Bucket=UD.bucket)
    s3.put_object(
        Bucket=UD.bucket,
        Key=f"{SESSION}/{UD.archive_name}",
        Body=_session_archive(tmp_path, marker),
    )
    script = tmp_path / "userdata.sh"
    script.write_text(text)
    env = _instance_env(moto_endpoint, endpoint, tmp_path / "work")
    r = subprocess.run(
        ["sh", str(script)], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "awsac-bootstrap: running the boot step" in out
    assert (tmp_path / "work" / "bootstrap" / WORKER_NAME).is_file()
    assert marker.read_text().split() == [
        f"session={SESSION}",
        "region=us-east-1",
        "python=python3",
    ]


@pytest.mark.slow
def test_stock_userdata_says_what_is_missing(
    tmp_path: Path, imds: tuple[str, type[_Imds]], moto_endpoint: str
) -> None:
    """An archive without the worker fails with a message naming the file and the way out."""
    import boto3

    endpoint, handler = imds
    text = stock_userdata(UD)
    handler.user_data = text
    s3 = boto3.client("s3", **_moto_kwargs(moto_endpoint))
    s3.create_bucket(Bucket=UD.bucket)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:bz2") as tar:
        info = tarfile.TarInfo("jobs.cfg")
        info.size = 0
        tar.addfile(info, io.BytesIO(b""))
    s3.put_object(Bucket=UD.bucket, Key=f"{SESSION}/{UD.archive_name}", Body=buf.getvalue())
    script = tmp_path / "userdata.sh"
    script.write_text(text)
    env = _instance_env(moto_endpoint, endpoint, tmp_path / "work")
    r = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert f"has no {WORKER_NAME}" in r.stderr
    assert "use a baked image" in r.stderr
