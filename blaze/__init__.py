"""blaze-spark: cost-based automatic caching for PySpark.

Public surface::

    import blaze
    spark = blaze.session()                       # local SparkSession with the project's defaults
    mgr = blaze.attach(spark, policy="blaze", memory_budget="256m")
    rdd.persist(blaze.BLAZE); df.persist(blaze.BLAZE); blaze.persist(x)
    mgr.report(); mgr.detach()                    # also detached by spark.stop()

The manager's modules import pyspark, so they load on first use (``import blaze`` stays light:
the startup hook and ``blaze.session`` must not pay for a PySpark import).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from blaze.session import session
from blaze_errors import BlazeError, ConfigError, InputError, JavaError

if TYPE_CHECKING:
    from blaze.manager import BlazeManager

__all__ = [
    "BLAZE",
    "BlazeError",
    "BlazeManager",
    "ConfigError",
    "InputError",
    "JavaError",
    "attach",
    "persist",
    "session",
]


def attach(spark, policy: str | None = None, **overrides: Any) -> BlazeManager:
    """Attach the cache manager to ``spark``; see :func:`blaze.manager.attach`."""
    from blaze.manager import attach as _attach

    return _attach(spark, policy, **overrides)


def persist(dataset):
    """``dataset.persist(blaze.BLAZE)`` for an RDD or a DataFrame; returns the dataset."""
    from blaze.levels import BLAZE as level

    if not callable(getattr(dataset, "persist", None)):
        raise TypeError(
            f"blaze.persist needs a PySpark RDD or DataFrame, got {type(dataset).__name__}"
        )
    return dataset.persist(level)


def __getattr__(name: str):
    if name == "BLAZE":
        from blaze.levels import BLAZE

        return BLAZE
    if name == "BlazeManager":
        from blaze.manager import BlazeManager

        return BlazeManager
    raise AttributeError(f"module 'blaze' has no attribute {name!r}")
