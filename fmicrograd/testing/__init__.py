"""Tools to test derivative rules: the op-to-torch table (``OPS``)."""

from .ops import OPS, OpCase

__all__ = ["OPS", "OpCase"]
