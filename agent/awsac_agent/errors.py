"""The one family of user-facing errors, shared by the agent and the client."""

from __future__ import annotations


class AwsacError(Exception):
    """An error a user can act on: the message names the thing and the fix."""

    exit_code = 2


class FormatError(AwsacError):
    """A file (jobs.cfg, session spec, user-data, record) that does not parse or validate.

    ``problems`` holds every problem found, so a user sees all of them at once.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = list(problems) if problems else [message]
        super().__init__(message)


class ArchiveError(AwsacError):
    """A session archive that cannot be built or must not be extracted."""


class CloudError(AwsacError):
    """A cloud call failed in a way the user must fix (credentials, endpoint, quota)."""


def join_problems(problems: list[str]) -> str:
    """One message listing several problems, one per line."""
    if len(problems) == 1:
        return problems[0]
    return f"{len(problems)} problems:\n" + "\n".join(f"  - {p}" for p in problems)
