"""What the opt-in startup hook calls once a SparkContext with ``spark.blaze.enabled=true`` is up.

The hook itself (``blaze/_startup/blaze_spark_startup.py``, installed as a top-level module
with ``blaze-spark.pth``) stays tiny; everything else lives here. A bad ``spark.blaze.*``
setting raises :class:`blaze.errors.BlazeError`, which makes the SparkContext fail to start
with that one line — better than running an experiment under a policy nobody asked for.
"""

from __future__ import annotations

__all__ = ["attach_at_startup"]


def attach_at_startup(sc):
    """Attach the manager to a SparkContext that was just initialised (once)."""
    from blaze.manager import active_manager, attach

    existing = active_manager(sc)
    if existing is not None:
        return existing
    return attach(sc)
