"""``python -m supervisor``: the command line (see :mod:`supervisor.app._cli`)."""

import sys

from .app._cli import main

if __name__ == "__main__":
    sys.exit(main())
