"""The project's user-facing errors, re-exported for ``import blaze`` users.

They are defined in :mod:`blaze_errors`, the bottom layer every package may import, so that
``lineage``, ``costmodel`` and ``streaming`` never import ``blaze``.
"""

from __future__ import annotations

from blaze_errors import BlazeError, ConfigError, InputError, JavaError

__all__ = ["BlazeError", "ConfigError", "InputError", "JavaError"]
