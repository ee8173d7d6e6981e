"""``python -m awsac_agent``: the same as ``awsac-agent``."""

import sys

from .cli import main

sys.exit(main())
