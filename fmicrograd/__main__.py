"""``python -m fmicrograd``: the command line (see ``fmicrograd.cli``)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
