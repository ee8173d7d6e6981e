"""One botocore data loader per process, shared by every session it makes.

A botocore session parses the service models (JSON) of the clients it creates and caches them in
its data loader; a new session starts with an empty one. EC2's model alone costs 0.3 s of CPU, so
a process that makes more than one session (the TUI's clouds, a script of verbs, a test run, the
emulator's helpers) parsed it again every time. With this loader it is parsed once: a client
costs 0.03 s instead of 0.3 s.
"""

from __future__ import annotations

import threading
from typing import Any, Dict, Optional

from botocore.loaders import Loader, create_loader

_lock = threading.Lock()
_loaders: Dict[Optional[str], Loader] = {}


def share_loader(session: Any) -> Any:
    """Give ``session`` (a botocore session; aiobotocore's are ones) this process's data loader
    for its data path (``AWS_DATA_PATH``, kept as botocore reads it); returns the session."""
    path = session.get_config_variable("data_path")
    with _lock:
        loader = _loaders.get(path)
        if loader is None:
            loader = _loaders[path] = create_loader(path)
    session.register_component("data_loader", loader)
    return session
