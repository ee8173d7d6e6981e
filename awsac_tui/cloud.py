"""One async client factory for AWS and the local cloud (aiobotocore, standard retries).

``async with Cloud(profile) as cloud: ec2 = await cloud.client("ec2")``; clients open lazily.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from aiobotocore.session import AioSession
from awsac_agent.botoloader import share_loader
from awsac_agent.errors import AwsacError, CloudError
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    WaiterError,
)
from botocore.parsers import ResponseParserError

from . import faults as _faults
from .spec import CloudProfile

LOCAL_ACCESS_KEY = "testing"
LOCAL_SECRET_KEY = "testing"
DEFAULT_LOCAL_REGION = "us-east-1"

CREDENTIAL_CODES = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "AuthFailure",
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "RequestExpired",
        "InvalidSecurity",
        "AccessDenied",
        "UnauthorizedOperation",
    }
)

NO_CREDENTIALS_HELP = (
    "No AWS credentials found. Use --local to run on the local cloud (no account needed), "
    "or name a configured profile with --profile NAME (see `aws configure`), "
    "or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."
)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError ('' for anything else)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def translate(exc: BaseException, where: str = "") -> AwsacError:
    """A user-facing AwsacError for a botocore exception (credentials, endpoint, other)."""
    if isinstance(exc, AwsacError):
        return exc
    at = f" ({where})" if where else ""
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return CloudError(NO_CREDENTIALS_HELP)
    if isinstance(exc, ProfileNotFound):
        return CloudError(f"{exc}. Check the name given to --profile, or use --local.")
    if isinstance(exc, NoRegionError):
        return CloudError(
            "No AWS region configured. Give --region (e.g. us-east-1) or use --local."
        )
    if isinstance(exc, EndpointConnectionError):
        return CloudError(
            f"Cannot reach the cloud endpoint {getattr(exc, 'kwargs', {}).get('endpoint_url', '')}"
            f"{at}. Check --endpoint-url and your network; for the local cloud run "
            "`awsac local up` (or pass --local)."
        )
    code = error_code(exc)
    if code in CREDENTIAL_CODES:
        msg = exc.response.get("Error", {}).get("Message", "")  # type: ignore[union-attr]
        return CloudError(
            f"The cloud refused the credentials{at}: {code}: {msg}. Refresh them "
            "(e.g. `aws sso login` or new keys), choose another --profile, or use --local."
        )
    if isinstance(exc, ClientError):
        msg = exc.response.get("Error", {}).get("Message", "")
        return CloudError(f"Cloud call failed{at}: {code}: {msg}")
    if isinstance(exc, ResponseParserError):
        return CloudError(
            f"The cloud endpoint answered with something that is not an AWS response{at}; "
            f"is --endpoint-url right, and does it offer this service? ({str(exc)[:200]})"
        )
    if isinstance(exc, BotoCoreError):
        return CloudError(f"Cloud call failed{at}: {exc}")
    return CloudError(f"Cloud call failed{at}: {exc}")


CLOUD_EXCEPTIONS = (BotoCoreError, ClientError, ResponseParserError)


@contextlib.asynccontextmanager
async def cloud_errors(where: str = "") -> AsyncIterator[None]:
    """Turn botocore exceptions raised inside into AwsacError (credentials, endpoint)."""
    try:
        yield
    except (BotoCoreError, ClientError, ResponseParserError) as exc:
        raise translate(exc, where) from exc


WAITER_DELAY_ENV = "AWSAC_WAITER_DELAY_SECONDS"
# seconds between a waiter's polls: EC2 itself takes tens of seconds to terminate (its own waiters
# say 15); the local cloud answers at once
DEFAULT_WAITER_DELAY = 5.0
LOCAL_WAITER_DELAY = 0.5


def waiter_delay(local: bool = False) -> float:
    """Seconds between the polls of a waiter: ``AWSAC_WAITER_DELAY_SECONDS``, else the default
    for a real or the local cloud."""
    default = LOCAL_WAITER_DELAY if local else DEFAULT_WAITER_DELAY
    try:
        return max(0.05, float(os.environ.get(WAITER_DELAY_ENV, default)))
    except ValueError:
        return default


async def wait_with(
    cloud: Cloud, service: str, waiter: str, timeout: float, what: str, **params: Any
) -> None:
    """botocore's waiter ``waiter`` (e.g. ec2 instance_terminated) with ``params``, polling every
    ``waiter_delay()`` seconds for at most ``timeout`` seconds; CloudError when it gives up."""
    delay = waiter_delay(cloud.profile.local)
    client = await cloud.client(service)
    config = {"Delay": delay, "MaxAttempts": max(1, math.ceil(timeout / delay))}
    try:
        await client.get_waiter(waiter).wait(**params, WaiterConfig=config)
    except WaiterError as exc:
        last = exc.last_response or {}
        why = (last.get("Error") or {}).get("Code") or exc.kwargs.get("reason") or "not yet"
        raise CloudError(
            f"timed out after {timeout:.0f} s waiting for {what} ({why}); run cleanup again"
        ) from None


class Cloud:
    """Clients for one cloud profile; use as ``async with Cloud(profile) as cloud``."""

    def __init__(
        self,
        profile: CloudProfile,
        *,
        max_attempts: int = 5,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
    ) -> None:
        self.profile = profile
        self.region: str | None = profile.region
        self.endpoint_url: str | None = profile.endpoint_url
        self.local_info: Any = None
        self._stack = AsyncExitStack()
        self._clients: dict[str, Any] = {}
        self._lock = asyncio.Lock()
        self._session: AioSession | None = None
        self._config = Config(
            retries={"mode": "standard", "max_attempts": max_attempts},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=20,
        )

    def describe(self) -> str:
        return self.profile.describe()

    async def __aenter__(self) -> Cloud:
        await self._stack.__aenter__()
        try:
            await self._setup()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._clients.clear()
        await self._stack.aclose()

    async def _setup(self) -> None:
        if self.profile.local:
            from .local import service  # the local cloud's Python API

            self.local_info = await asyncio.to_thread(service.ensure_up)
            self.endpoint_url = self.local_info.endpoint
            self.region = self.region or getattr(self.local_info, "region", DEFAULT_LOCAL_REGION)
            session = share_loader(AioSession())
            session.set_credentials(LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY)
            self._session = session
            return
        try:
            session = share_loader(AioSession(profile=self.profile.profile))
            creds = await session.get_credentials()
        except ProfileNotFound as exc:
            raise translate(exc) from exc
        except BotoCoreError as exc:
            raise translate(exc) from exc
        if creds is None:
            raise CloudError(NO_CREDENTIALS_HELP)
        self.region = self.region or session.get_config_variable("region")
        if not self.region:
            if self.endpoint_url:
                self.region = DEFAULT_LOCAL_REGION
            else:
                raise CloudError(
                    "No AWS region configured for profile "
                    f"{self.profile.profile or 'default'!r}. Give --region (e.g. us-east-1)."
                )
        self._session = session
        if self.endpoint_url:
            await check_reachable(self.endpoint_url)

    async def client(self, service: str) -> Any:
        """The aiobotocore client for ``service`` (opened on first use, closed with the Cloud)."""
        async with self._lock:
            if service in self._clients:
                return self._clients[service]
            assert self._session is not None, "use Cloud as `async with Cloud(profile)`"
            config = self._config
            if service == "s3" and self.endpoint_url:
                config = config.merge(Config(s3={"addressing_style": "path"}))
            kwargs: dict[str, Any] = {"region_name": self.region, "config": config}
            if self.endpoint_url:
                kwargs["endpoint_url"] = self.endpoint_url
                if self.endpoint_url.startswith("http://"):
                    # plain HTTP (the local cloud on loopback): there is no TLS to verify, and
                    # with verify on, aiobotocore loads the CA bundle for every client's
                    # connector (23 ms of CPU each, for each verb a script or a poll runs)
                    kwargs["verify"] = False
            client = await self._stack.enter_async_context(
                self._session.create_client(service, **kwargs)
            )
            self._clients[service] = _faults.install(client, self.profile.local)
            return client


async def check_reachable(endpoint_url: str, timeout: float = 5.0) -> None:
    """CloudError at once when nothing listens at ``endpoint_url`` (instead of minutes of retries)."""
    from urllib.parse import urlsplit

    parts = urlsplit(endpoint_url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError) as exc:
        raise CloudError(
            f"Cannot reach the cloud endpoint {endpoint_url} ({exc.__class__.__name__}: {exc}). "
            "Check --endpoint-url and your network; for the local cloud run `awsac local up` "
            "(or pass --local)."
        ) from None
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


def env_has_credentials() -> bool:
    """Whether AWS credentials are visible in the environment (a cheap hint, not a check)."""
    return bool(os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE"))


def default_profile() -> CloudProfile:
    """The local cloud when it is running, else the default AWS profile."""
    try:
        from .local import service  # the local cloud's Python API

        if service.running_info() is not None:
            return CloudProfile(local=True)
    except (ImportError, OSError):
        pass
    return CloudProfile()


def start_local_cloud() -> CloudProfile:
    """Start the local cloud unless it runs (blocking: call it in a thread); its profile."""
    from .local import service  # the local cloud's Python API

    service.ensure_up()
    return CloudProfile(local=True)


def make_local_snapshot(directory: str | os.PathLike[str], description: str = "") -> str:
    """A local-cloud snapshot of ``directory`` (`awsac local snapshot DIR`; blocking)."""
    from .local import service  # the local cloud's Python API

    return service.make_snapshot(Path(directory), description)
