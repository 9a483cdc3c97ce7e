"""costmodel: what caching costs — the Blaze cost function, policies, predictors, profiles.

Pure Python (numpy, scikit-learn): no Spark import, so every rule is unit tested on DAGs built
by hand. Entry points::

    from costmodel import CostModel, RddSpec, DiskCost, get_policy, PolicyContext
    model = CostModel(rdds, metrics, DiskCost(5.0, 5.0))
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
