"""Helpers shared by the test modules (imported as ``from helpers import ...``)."""


def counted(f):
    """``f`` wrapped to count its calls, and the list the calls go into
    (a trace of a jitted ``f`` is one call)."""
    calls = []

    def g(*args):
        calls.append(1)
        return f(*args)

    return g, calls
