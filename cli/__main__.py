"""``python -m mqlite.cli``: the same as the ``mqlite`` command."""

import sys

from mqlite.cli.main import main

sys.exit(main())
