"""``python -m hal``: see :mod:`hal.cli`."""

import sys

from .cli import main

sys.exit(main())
