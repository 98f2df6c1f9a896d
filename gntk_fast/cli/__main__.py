"""``python -m gntk_fast.cli``: the ``gntk-fast`` command."""
import sys

from . import main

sys.exit(main())
