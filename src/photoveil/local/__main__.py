"""`python -m photoveil.local ...` is `photoveil local ...` (useful before the CLI is installed)."""

import sys

from photoveil.local import main

raise SystemExit(main(sys.argv[1:]))
