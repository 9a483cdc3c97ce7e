"""Errors of the TerseCades codecs: every bad input names its column and block in one line.

Both classes derive from ``ValueError`` so callers that only know the standard library still
catch them; ``streaming/`` must not depend on ``blaze/``, so they are not ``BlazeError``s (the
``blaze stream tersecades`` command turns them into one-line messages itself).
"""

from __future__ import annotations

__all__ = ["CorruptEncodingError", "TerseError", "UnfitValueError"]


class TerseError(ValueError):
    """Base class of every TerseCades input error."""


class UnfitValueError(TerseError):
    """A raw batch whose values do not fit the declared type or codec (refused, never clipped)."""


class CorruptEncodingError(TerseError):
    """An encoded batch whose metadata or buffers are inconsistent (refused, never decoded)."""
