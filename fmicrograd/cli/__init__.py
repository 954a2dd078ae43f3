"""The command line, ``python -m fmicrograd`` (or ``fmicrograd``): ``main``
parses and runs it (``cli.main``); beside it ``validation`` (bad values,
refused before training), ``steps`` (the training step each option gives),
``runs`` (what ``--resume`` checks) and ``advice`` (the diagnosis as flags).

>>> fm.cli.build_parser().prog
'fmicrograd'
"""

from .main import accuracy, build_parser, main

__all__ = ["main", "build_parser", "accuracy"]
