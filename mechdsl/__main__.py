"""``python -m mechdsl ...``: the same command line as ``mechdsl ...``."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
