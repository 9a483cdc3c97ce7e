"""costmodel: what caching costs — the Blaze cost function, policies, predictors, profiles.

Pure Python (numpy, SciPy): no Spark import, so every rule is unit tested on DAGs built
by hand. Modules, one job each:

- ``types``: plain inputs and outputs — ``RddSpec``, ``PartitionMetrics``, ``PartitionCost``
  (F, R, W, Rd, comp_cost, disk_cost, cost), ``Location`` (MEMORY, DISK, NONE).
- ``cost``: ``CostModel`` — F, R, W, Rd and cost per partition over a DAG, fed
  incrementally (``add_rdd``, ``observe``, ``set_location``, ``complete_stage``,
  ``set_current_job``), memoised with per-split invalidation; ``reused_rdds`` (autoCache),
  ``dead_rdds`` (auto-unpersist), ``costs(keys)`` (batch).
- ``adapter``: ``from_lineage(dag, disk)`` — a ``CostModel`` from a ``lineage.dag.LineageDag``.
- ``disk``: ``DiskCost``, ``calibrate_disk(local_dir)`` (measured once, cached with a
  timestamp), ``disk_cost_from_config(write, read, local_dir)`` (the conf override).
- ``policy_table``: the one table of policy names and what each means to the manager, the
  benchmark runner and the cost model.
- ``policies``: ``get_policy(name, **options)`` for blaze, lru, lrc, mrd, mem_only, mem_disk
  (options ``spill=``, ``size_ratio_filter=``, ``staged=``); each has
  ``admit(incoming, resident, budget_bytes, ctx) -> AdmissionDecision`` and
  ``plan(states, budget_bytes, ctx) -> Plan``; ``PolicyContext(costs=CostModel | TableCosts)``.
- ``predict``: ``Predictors`` — per logical dataset (call site + parents' call sites)
  least-squares growth models over (iteration, input scale), last-value fallback, running
  error report; ``Predictors.estimator`` plugs predictions into a ``CostModel``.
- ``profile``: versioned JSON profiles, ``record(path, model, app_name=...)`` / ``load(path,
  app_name=...)`` (refuses another application or Blaze version with one line).
- ``cli``: ``blaze profile show PATH``, ``blaze disk calibrate``.

Example::

    from costmodel import CostModel, DiskCost, PartitionState, PolicyContext, RddSpec, get_policy
    model = CostModel(rdds, metrics, DiskCost(write_ms_per_mib=5.0, read_ms_per_mib=5.0))
    decision = get_policy("blaze").admit(incoming, resident, budget, PolicyContext(model))
"""

from costmodel.adapter import from_lineage
from costmodel.cost import CostModel, Estimate
from costmodel.disk import DiskCost, calibrate_disk, disk_cost_from_config
from costmodel.policies import (
    POLICY_NAMES,
    AdmissionDecision,
    PartitionState,
    Plan,
    Policy,
    PolicyContext,
    TableCosts,
    get_policy,
)
from costmodel.types import Location, PartitionCost, PartitionKey, PartitionMetrics, RddSpec

__all__ = [
    "POLICY_NAMES",
    "AdmissionDecision",
    "CostModel",
    "DiskCost",
    "Estimate",
    "Location",
    "PartitionCost",
    "PartitionKey",
    "PartitionMetrics",
    "PartitionState",
    "Plan",
    "Policy",
    "PolicyContext",
    "RddSpec",
    "TableCosts",
    "calibrate_disk",
    "disk_cost_from_config",
    "from_lineage",
    "get_policy",
]
