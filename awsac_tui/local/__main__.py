"""``python -m awsac_tui.local ...`` runs ``awsac local ...``."""

import sys

from awsac_tui.local.cli import main

sys.exit(main(sys.argv[1:]))
