"""``python -m pdu``: see :mod:`pdu.cli`."""

from .cli import main

raise SystemExit(main())
