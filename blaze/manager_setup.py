"""What a manager starts from, read once before its parts are made: Spark's storage memory
per executor, the memory budget checked against it, a recorded profile, the disk's cost.

Why apart from :mod:`blaze.manager`: each is a check of the user's input that must raise one
clear error before anything is attached.
"""

from __future__ import annotations

from blaze._jvm import JvmBridge
from blaze.config import PREFIX, BlazeConfig, local_dir_of
from blaze.put_room import PUT_ROOM, task_slots
from blaze.tracker import UsageTracker
from blaze_errors import ConfigError
from costmodel.predict import Predictors

__all__ = ["disk_cost", "memory_budget", "profile_start", "slots", "storage_memory"]


def storage_memory(bridge: JvmBridge) -> int | None:
    """The smallest executor storage memory (None: Spark reports no block manager)."""
    statuses = bridge.storage_status()
    executors = [s for s in statuses if s.executor_id != "driver"] or statuses
    if not executors:
        return None
    return min(s.max_memory for s in executors)


def slots(bridge: JvmBridge, default_parallelism: int) -> int:
    """Tasks one executor runs at once (:func:`blaze.put_room.task_slots`), the executors
    counted from the block managers registered now."""
    executors = [s for s in bridge.storage_status() if s.executor_id != "driver"]
    return task_slots(bridge.conf(), default_parallelism, max(len(executors), 1))


def memory_budget(config: BlazeConfig, storage_memory: int) -> int:
    """The configured budget, checked; by default Spark's storage memory less the floor of
    the put room (:mod:`blaze.put_room` lowers it while stages store managed partitions)."""
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
        profile_reads={s: int(v["reads"]) for s, v in sites.items() if "reads" in v},
        # sites whose datasets were cached then, not every ancestor of them that a
        # reused dataset's jobs also read (those need no cache of their own)
        profile_reused=[s for s, v in sites.items() if v.get("cached", v.get("reused"))],
        profile_loop_inputs=[
            s for s, v in sites.items() if v.get("generations") == 1 and int(v.get("uses", 0)) >= 2
        ],
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
