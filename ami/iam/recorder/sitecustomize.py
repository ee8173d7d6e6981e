"""Hook this interpreter's botocore sessions to record AWS calls when AWSAC_RECORD_AWS_CALLS is set."""

from __future__ import annotations

import os
import sys

if os.environ.get("AWSAC_RECORD_AWS_CALLS"):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        import awscalls

        awscalls.install()
    finally:
        del sys.path[0]
