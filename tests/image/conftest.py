"""Put ami/iam (the policy checker and the AWS call recorder) on sys.path for the image tests."""

from __future__ import annotations

import sys
from pathlib import Path

IAM = Path(__file__).resolve().parents[2] / "ami" / "iam"
if str(IAM) not in sys.path:
    sys.path.insert(0, str(IAM))
