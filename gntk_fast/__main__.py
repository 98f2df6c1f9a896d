"""``python -m gntk_fast``: the ``gntk-fast`` command."""
import sys

from .cli import main

sys.exit(main())
