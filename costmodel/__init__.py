"""costmodel: what caching costs — the Blaze cost function, policies, predictors, profiles.

Pure Python (numpy, SciPy): no Spark import, so every rule is unit tested on DAGs built
by hand. Modules, one job each:

- ``types``: plain inputs and outputs — ``RddSpec``, ``PartitionMetrics``, ``PartitionCost``
  (F and its later-job part, R, W, Rd, the hit costs, comp_cost, disk_cost, cost),
  ``Location`` (MEMORY, DISK, NONE).
- ``cost``: ``CostModel`` — F (pending stages that have not read the split yet + reads
  predicted for later jobs), R, W, Rd and cost per partition over a DAG, fed incrementally
  (``add_rdd``, ``observe``, ``set_location``, ``start_task``, ``end_task``, ``complete_stage``,
  ``set_current_job``, ``set_disk``), memoised with per-split invalidation; LRC's
  ``reference_count`` and MRD's ``next_reference``; ``reused_rdds``, ``dead_rdds``,
  ``costs(keys)`` (batch).
- ``adapter``: ``rdd_spec(dag, rdd_id)`` — the one builder of ``RddSpec`` from a
  ``lineage.dag.LineageDag`` (live or replayed); ``from_lineage(dag, disk)`` — a model of it.
- ``disk``: ``DiskCost`` (W, Rd, hit costs), ``calibrate_disk(local_dir)`` (a probe as Spark
  writes blocks: no fsync, read back cold; run at every attach), ``OnlineDiskCost`` (the
  probe corrected by the application's own transfers), ``disk_cost_from_config``.
- ``eviction_index``: ``EvictionIndex`` — residents kept in a policy's eviction order.
- ``policy_table``: the one table of policy names and what each means to the manager, the
  benchmark runner and the cost model.
- ``policies``: ``get_policy(name, **options)`` for blaze, lru, lrc, mrd, mem_only, mem_disk
  (options ``spill=``, ``size_ratio_filter=``, ``skip_same_rdd=``); each rule is written
  once, as ``choose(incoming, index, used, budget, ctx)`` over an ``EvictionIndex``, and
  ``admit(incoming, resident, budget_bytes, ctx) -> AdmissionDecision`` and
  ``plan(states, budget_bytes, ctx) -> Plan`` answer over lists through it;
  ``PolicyContext(costs=CostModel | TableCosts)``.
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
