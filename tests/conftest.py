"""Make the client (repo root) and the agent (agent/) importable without installing awsac."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "agent"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
