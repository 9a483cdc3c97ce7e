"""What a manager starts from, read once before its parts are made: Spark's storage memory
per executor, the memory budget checked against it, a recorded profile, the disk's cost.

Why apart from :mod:`blaze.manager`: each is a check of the user's input that must raise one
clear error before anything is attached.
"""

from __future__ import annotations

from blaze._jvm import JvmBridge
from blaze.config import PREFIX, BlazeConfig, local_dir_of
from blaze.tracker import UsageTracker
from blaze_errors import ConfigError
from costmodel.predict import Predictors

__all__ = ["PUT_ROOM", "disk_cost", "memory_budget", "profile_start", "storage_memory"]

PUT_ROOM = 0.125  # of Spark's storage memory, left free for the next put (default budget)


def storage_memory(bridge: JvmBridge) -> int | None:
    """The smallest executor storage memory (None: Spark reports no block manager)."""
    statuses = bridge.storage_status()
    executors = [s for s in statuses if s.executor_id != "driver"] or statuses
    if not executors:
        return None
    return min(s.max_memory for s in executors)


def memory_budget(config: BlazeConfig, storage_memory: int) -> int:
    """The configured budget, checked; by default Spark's storage memory less a put's room.

    Why the room: Spark's MemoryStore evicts (its own LRU choosing among cached blocks) only
    when a block being put does not fit. Keeping the manager's blocks ``PUT_ROOM`` of the pool
    below its size leaves a new partition room to land, and the engine then decides where it
    and the others go (the report's ``spark_evictions`` counts when that was not enough).
    """
    budget = config.memory_budget
    if budget is None:
        return int(storage_memory * (1.0 - PUT_ROOM))
    if budget > storage_memory:
        raise ConfigError(
            f"{PREFIX}memoryBudget={budget} bytes exceeds Spark's storage memory of "
            f"{storage_memory} bytes per executor (raise spark.executor.memory / "
            "spark.driver.memory or lower the budget)"
        )
    return int(budget)


def profile_start(config: BlazeConfig, bridge: JvmBridge) -> tuple[UsageTracker, Predictors]:
    """Start from a recorded profile: per-site uses (F before any job) and the sites whose
    datasets were cached (autoCache at first use), plus the fitted predictors."""
    from costmodel.profile import load

    if not config.profile_path:
        raise ConfigError(f"{PREFIX}profile.mode=use needs {PREFIX}profile.path")
    profile = load(config.profile_path, app_name=bridge.app_name)
    sites = profile.sites
    tracker = UsageTracker(
        profile_uses={s: int(v.get("uses", 0)) for s, v in sites.items()},
        # sites whose datasets were cached then, not every ancestor of them that a
        # reused dataset's jobs also read (those need no cache of their own)
        profile_reused=[s for s, v in sites.items() if v.get("cached", v.get("reused"))],
    )
    return tracker, profile.predictors


def disk_cost(config: BlazeConfig, bridge: JvmBridge):
    """W, Rd and the hit costs, probed in the directory Spark writes blocks to (the conf's
    figures where given)."""
    from costmodel.disk import disk_cost_from_config

    return disk_cost_from_config(
        config.disk_write_ms_per_mib,
        config.disk_read_ms_per_mib,
        local_dir_of(bridge.conf()),
    )
