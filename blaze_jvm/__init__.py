"""blaze-spark's JVM module: Java sources shipped as package data, built on first use.

Why a package of its own: both ``blaze`` (the cache manager's plugin) and ``streaming``
(AOMG's SQL aggregates) run Java code inside Spark, and ``streaming`` must not import
``blaze``. This package imports nothing of the project but ``blaze_errors`` and never
touches py4j: it finds the jar and names it in a Spark conf; talking to the running JVM is
the importer's job (``blaze/_jvm.py`` for the manager).
"""

from __future__ import annotations

from blaze_jvm.build import jar_path
from blaze_jvm.conf import PLUGIN_CLASS, with_plugin

__all__ = ["PLUGIN_CLASS", "jar_path", "with_plugin"]
