"""``python -m dagtrio``: the same as the ``dagtrio`` command."""

import sys

from .cli import main

sys.exit(main())
