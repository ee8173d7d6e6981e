"""Session ids: ``YYMMDD_HHMM--shortdescr--xxxx`` (UTC time, 4 hex of randomness)."""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timezone
from typing import Any, Dict, Optional

SHORTDESCR_RE = re.compile(r"^[A-Za-z0-9_]{1,8}$")
SESSION_ID_RE = re.compile(r"^(\d{6})_(\d{4})--([A-Za-z0-9_]{1,8})--([0-9a-f]{4})$")

# The tag key that marks every instance and volume of a session (its value is the session id).
SESSION_TAG = "awsac:session"


def session_tag_filter(session_id: str) -> Dict[str, Any]:
    """The EC2 Describe* filter that selects the resources tagged with ``session_id``."""
    return {"Name": f"tag:{SESSION_TAG}", "Values": [session_id]}


def check_shortdescr(shortdescr: str) -> Optional[str]:
    """Why ``shortdescr`` cannot be used in a session id, or None."""
    if not shortdescr:
        return "short description is empty (give 1 to 8 letters, digits or _ e.g. 'eventgen')"
    if len(shortdescr) > 8:
        return f"short description {shortdescr!r} is {len(shortdescr)} characters long (at most 8)"
    if not SHORTDESCR_RE.match(shortdescr):
        return (
            f"short description {shortdescr!r} may only use letters, digits and _ "
            "(it becomes part of the session id, an S3 prefix and a SimpleDB domain)"
        )
    return None


def new_session_id(
    shortdescr: str, now: Optional[datetime] = None, random_hex: Optional[str] = None
) -> str:
    """A new session id; ``now`` and ``random_hex`` are for tests."""
    why = check_shortdescr(shortdescr)
    if why:
        raise ValueError(why)
    now = now or datetime.now(timezone.utc)
    suffix = random_hex if random_hex is not None else secrets.token_hex(2)
    sid = f"{now:%y%m%d_%H%M}--{shortdescr}--{suffix}"
    if not SESSION_ID_RE.match(sid):
        raise ValueError(f"not a valid session id: {sid!r}")
    return sid


def is_session_id(text: str) -> bool:
    """Whether ``text`` is a well-formed session id."""
    return bool(SESSION_ID_RE.match(text))


def session_started(session_id: str) -> Optional[datetime]:
    """The UTC minute encoded in a session id, or None if it is malformed."""
    m = SESSION_ID_RE.match(session_id)
    if not m:
        return None
    try:
        started = datetime.strptime(m.group(1) + m.group(2), "%y%m%d%H%M")
    except ValueError:  # well-formed digits, impossible date (e.g. month 13)
        return None
    return started.replace(tzinfo=timezone.utc)
