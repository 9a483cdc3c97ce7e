"""AOMG's native path on real Spark: window by window equal to ``QuantileSummary``, within α of
DuckDB's ``quantile_disc``, bad values counted, bad arguments refused before any job runs."""

from __future__ import annotations

from datetime import datetime, timezone

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from streaming.aomg.operator import window_quantiles
from streaming.aomg.summary import QuantileSummary, SummaryConfig
from streaming.aomg.windows import WindowSpec
from streaming.common.telemetry import TelemetryConfig, generate_table

pytestmark = pytest.mark.spark

QUANTILES = [0.0, 0.5, 0.9, 0.99, 0.999, 1.0]
CONFIG = SummaryConfig(relative_accuracy=0.005, exact_limit=4_096, tail_size=64)
BASE_US = 1_700_000_000_000_000
SCHEMA = "key string, ts timestamp, value double"


def _data_sets() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(15)
    n = 6_000
    return {
        "lognormal": rng.lognormal(6.0, 1.0, n),
        "bimodal": np.concatenate(
            [rng.normal(250, 20, n // 2), rng.normal(5_000, 300, n // 2)]
        ).clip(0.5),
        "pareto_tail": 2_000.0 * (1.0 + rng.pareto(1.3, n)),
        "recurring_integers": rng.choice(np.arange(200, 900), size=n).astype(np.float64),
        "constant": np.full(n, 1234.5),
        "window_of_37": rng.lognormal(4.0, 2.0, 37),
        "zeros": np.concatenate([np.zeros(n // 3), rng.lognormal(3.0, 2.0, n)]),
        "telemetry_rtt": generate_table(TelemetryConfig(seed=3), n)["rtt_us"]
        .to_numpy()
        .astype(np.float64),
        "with_bad_values": np.concatenate(
            [rng.lognormal(5.0, 1.5, n), [np.nan, -1.0, np.inf, -np.inf, np.nan]]
        ),
    }


DATA_SETS = _data_sets()


def _frame(values: np.ndarray, keys: int, span_us: int, seed: int = 0) -> pd.DataFrame:
    """Values spread over ``keys`` keys and ``span_us`` of event time, in shuffled order."""
    rng = np.random.default_rng(seed)
    n = values.size
    return pd.DataFrame(
        {
            "key": [f"k{i}" for i in rng.integers(0, keys, n)],
            "ts": pd.to_datetime(BASE_US + rng.integers(0, span_us, n), unit="us", utc=True),
            "value": values,
        }
    )


def _expected(frame: pd.DataFrame, spec: WindowSpec, quantiles: list[float]) -> dict:
    """(key, window end µs) -> (count, skipped, answers) from QuantileSummary itself."""
    t = frame["ts"].astype("int64").to_numpy() // 1_000  # ns -> µs
    out: dict = {}
    for end in sorted({e for s in spec.sub_window_start(t) for e in spec.window_ends(int(s))}):
        inside = (t >= end - spec.window_us) & (t < end)
        for key, group in frame[inside].groupby("key"):
            s = QuantileSummary.from_values(group["value"].to_numpy(), CONFIG, on_invalid="skip")
            out[(key, end)] = (s.count, s.skipped, s.quantiles(quantiles))
    return out


def _got(rows: pd.DataFrame) -> dict:
    return {
        (r.key, int(r.window_end.value // 1_000)): (r.count, r.skipped, np.asarray(r.quantiles))
        for r in rows.itertuples()
    }


def _run(spark, frame: pd.DataFrame, **kwargs) -> pd.DataFrame:
    df = spark.createDataFrame(frame, SCHEMA)
    return window_quantiles(
        df, key_col="key", time_col="ts", value_col="value", config=CONFIG, **kwargs
    ).toPandas()


def _assert_same(got: dict, expected: dict) -> None:
    assert got.keys() == expected.keys()
    for k, (count, skipped, answers) in expected.items():
        g_count, g_skipped, g_answers = got[k]
        assert (g_count, g_skipped) == (count, skipped), k
        np.testing.assert_array_equal(g_answers, answers, err_msg=str(k))


@pytest.mark.parametrize("name", sorted(DATA_SETS))
def test_native_equals_quantile_summary_window_by_window(spark, name):
    """Sliding windows of sub-windows, three keys: every row identical to the reference."""
    spec = WindowSpec.of("2 s", "500 ms", "1 s")
    frame = _frame(DATA_SETS[name], keys=3, span_us=4_000_000)
    got = _got(
        _run(spark, frame, window="2 s", sub_window="500 ms", slide="1 s", quantiles=QUANTILES)
    )
    _assert_same(got, _expected(frame, spec, QUANTILES))
