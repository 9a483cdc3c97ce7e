"""``python -m blaze_cli``: the ``blaze`` command without the installed script."""

import sys

from blaze_cli import main

sys.exit(main())
