"""``python -m sshward ...``: the same as the ``sshward`` console script."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
