"""``python -m bridge``: the same as the ``sms-bridge`` console script."""

import sys

from .start import main

sys.exit(main())
