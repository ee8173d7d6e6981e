"""Where awsac keeps its state on this machine: the state directory, session records, local cloud.

The one owner of these paths; records.py and the local cloud (local/) both take them from here.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "awsac"


def state_dir() -> Path:
    """awsac's state directory: $AWSAC_STATE_DIR, else the platform's user state directory
    (platformdirs: $XDG_STATE_HOME/awsac, else ~/.local/state/awsac on Linux)."""
    explicit = os.environ.get("AWSAC_STATE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    return platformdirs.user_state_path(APP_NAME)


def sessions_dir() -> Path:
    """The directory of the session records (one TOML file per session)."""
    return state_dir() / "sessions"


def record_path(session_id: str) -> Path:
    """The record file of session ``session_id``."""
    return sessions_dir() / f"{session_id}.toml"


def local_dir(base: Path | None = None) -> Path:
    """The local cloud's directory inside the state directory (or inside ``base``)."""
    return (base if base is not None else state_dir()) / "local"
