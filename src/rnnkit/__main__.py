"""``python -m rnnkit ...``: the same as the ``rnnkit`` command."""
import sys

from .cli.entry import main

sys.exit(main())
