"""How good the manager's size predictions were: each block's predicted size against the
size Spark stored it at.

Why kept: a new generation of a dataset is priced before it is computed, from the sizes its
site's earlier generations had (:mod:`costmodel.predict`); the report says how far off those
predictions were, so a wrong price can be traced to a wrong size.
"""

from __future__ import annotations

import statistics

__all__ = ["SizeScore"]

Key = tuple[int, int]  # (rdd_id, split_index)


class SizeScore:
    """Predicted sizes waiting for their block, and the errors of those already stored."""

    def __init__(self) -> None:
        self._predicted: dict[Key, float] = {}
        self._errors: list[float] = []
        self._predicted_bytes = 0.0
        self._observed_bytes = 0

    def predict(self, key: Key, size: float) -> None:
        """Register the size predicted for a block before it is stored."""
        self._predicted[key] = float(size)

    def observe(self, key: Key, size: int) -> None:
        """The block was stored at ``size`` bytes: score its prediction, if it had one."""
        predicted = self._predicted.pop(key, None)
        if predicted is None or size <= 0:
            return
        self._errors.append(abs(predicted - size) / size)
        self._predicted_bytes += predicted
        self._observed_bytes += size

    def report(self) -> dict:
        errors = self._errors
        return {
            "method": "costmodel.predict per callSite (last size until 3 generations)",
            "blocks": len(errors),
            "median_relative_error": statistics.median(errors) if errors else None,
            "predicted_bytes": int(self._predicted_bytes),
            "observed_bytes": int(self._observed_bytes),
        }
