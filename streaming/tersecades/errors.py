"""Errors of the TerseCades codecs: every bad input names its column and block in one line.

Every class derives from :class:`blaze_errors.InputError` (itself a ``ValueError``, for callers
that only know the standard library), so the ``blaze`` command prints it as one line (exit 2).
"""

from __future__ import annotations

from blaze_errors import InputError

__all__ = ["CorruptEncodingError", "TerseError", "UnfitValueError"]


class TerseError(InputError):
    """Base class of every TerseCades input error."""


class UnfitValueError(TerseError):
    """A raw batch whose values do not fit the declared type or codec (refused, never clipped)."""


class CorruptEncodingError(TerseError):
    """An encoded batch whose metadata or buffers are inconsistent (refused, never decoded)."""
