"""AOMG's SQL functions on real Spark: window by window equal to ``QuantileSummary`` (answers
and bytes), within α of DuckDB's ``quantile_disc``, usable from SQL text and the DataFrame
API, bad values counted, bad arguments refused before any job runs, bad summaries named."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from blaze_errors import InputError
from streaming.aomg import errors, register
from streaming.aomg.operator import window_quantiles, window_summaries
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


def _expected(
    frame: pd.DataFrame, spec: WindowSpec, quantiles: list[float], config: SummaryConfig = CONFIG
) -> dict:
    """(key, window end µs) -> (count, skipped, answers) from QuantileSummary itself."""
    t = frame["ts"].astype("int64").to_numpy() // 1_000  # ns -> µs
    out: dict = {}
    for end in sorted({e for s in spec.sub_window_start(t) for e in spec.window_ends(int(s))}):
        inside = (t >= end - spec.window_us) & (t < end)
        for key, group in frame[inside].groupby("key"):
            s = QuantileSummary.from_values(group["value"].to_numpy(), config, on_invalid="skip")
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


def _duckdb_exact(frame: pd.DataFrame, spec: WindowSpec, quantiles: list[float]) -> dict:
    """(key, window end µs) -> quantile_disc of the valid values (tumbling windows)."""
    con = duckdb.connect()
    valid = frame[np.isfinite(frame["value"]) & (frame["value"] >= 0)]
    con.register("rows", valid)
    picks = ", ".join(f"quantile_disc(value, {q})" for q in quantiles)
    rows = con.execute(
        f"""SELECT key, epoch_us(time_bucket(INTERVAL {spec.window_us} microseconds, ts))
                   + {spec.window_us} AS window_end, {picks}
            FROM rows GROUP BY ALL"""
    ).fetchall()
    return {(r[0], int(r[1])): np.asarray(r[2:], dtype=np.float64) for r in rows}


@pytest.mark.parametrize("name", sorted(DATA_SETS))
def test_native_equals_quantile_summary_and_is_within_alpha_of_duckdb(spark, name):
    """Two keys, three 1 s windows of 250 ms sub-windows: every row identical to the
    reference summary's, every answer within α of DuckDB's exact ``quantile_disc``."""
    spec = WindowSpec.of("1 s", "250 ms")
    frame = _frame(DATA_SETS[name], keys=2, span_us=3_000_000, seed=1)
    got = _got(_run(spark, frame, window="1 s", sub_window="250 ms", quantiles=QUANTILES))
    _assert_same(got, _expected(frame, spec, QUANTILES))
    exact = _duckdb_exact(frame, spec, QUANTILES)
    assert exact.keys() == got.keys()
    for k, truth in exact.items():
        answers = got[k][2]
        error = np.abs(answers - truth) / np.where(truth == 0, 1.0, truth)
        assert error.max() <= CONFIG.relative_accuracy * (1 + 1e-9), (k, answers, truth)
    if name == "with_bad_values":
        assert sum(v[1] for v in got.values()) == 5  # NaN, -1, inf, -inf, NaN


def test_window_summaries_are_the_reference_bytes(spark):
    """Sliding windows (panes merged by aomg_summary_merge): each window's summary is byte for
    byte ``QuantileSummary.to_bytes`` of the window's values."""
    spec = WindowSpec.of("1 s", "500 ms", "500 ms")
    frame = _frame(DATA_SETS["with_bad_values"], keys=3, span_us=2_000_000, seed=2)
    df = spark.createDataFrame(frame, SCHEMA)
    rows = window_summaries(
        df,
        window="1 s",
        sub_window="500 ms",
        slide="500 ms",
        key_col="key",
        value_col="value",
        config=CONFIG,
    ).collect()
    t = frame["ts"].astype("int64").to_numpy() // 1_000
    assert {(r.key, int(r.window_end.timestamp() * 1_000_000)) for r in rows} == set(
        _expected(frame, spec, [0.5])
    )
    for row in rows:
        end = int(row.window_end.timestamp() * 1_000_000)
        inside = (t >= end - spec.window_us) & (t < end) & (frame["key"] == row.key).to_numpy()
        expected = QuantileSummary.from_values(
            frame["value"].to_numpy()[inside], CONFIG, on_invalid="skip"
        )
        assert bytes(row.summary) == expected.to_bytes(), (row.key, end)
        assert QuantileSummary.from_bytes(row.summary) == expected


def test_sql_text_and_dataframe_api_give_the_reference_answers(spark):
    """The functions by name from SQL text, ``F.expr`` and ``F.call_function``; a merge of
    per-key summaries equals the summary of all values."""
    register(spark)
    values = DATA_SETS["telemetry_rtt"]
    frame = _frame(values, keys=3, span_us=1_000_000, seed=5)
    df = spark.createDataFrame(frame, SCHEMA)
    df.createOrReplaceTempView("aomg_values")
    qs = [0.5, 0.9, 0.99, 0.999]
    by_sql = spark.sql(
        """SELECT key, aomg_quantiles(aomg_summary_agg(value, 0.005), array(0.5, 0.9, 0.99, 0.999))
                  AS q, aomg_quantile(aomg_summary_agg(value), 0.99) AS p99
           FROM aomg_values GROUP BY key"""
    ).collect()
    by_expr = df.groupBy("key").agg(F.expr("aomg_summary_agg(value) AS s")).collect()
    merged = (
        df.groupBy("key")
        .agg(F.call_function("aomg_summary_agg", F.col("value")).alias("s"))
        .agg(F.call_function("aomg_summary_merge", F.col("s")).alias("s"))
        .select(
            F.call_function("aomg_summary_count", F.col("s")).alias("n"),
            F.call_function("aomg_summary_skipped", F.col("s")).alias("skipped"),
            F.expr("aomg_quantiles(s, array(0.5, 0.9, 0.99, 0.999))").alias("q"),
        )
        .first()
    )
    for row in by_sql:
        ref = QuantileSummary.from_values(frame.loc[frame["key"] == row.key, "value"], CONFIG)
        np.testing.assert_array_equal(row.q, ref.quantiles(qs))
        assert row.p99 == ref.quantiles([0.99])[0]
    for row in by_expr:
        ref = QuantileSummary.from_values(frame.loc[frame["key"] == row.key, "value"], CONFIG)
        assert bytes(row.s) == ref.to_bytes()
    whole = QuantileSummary.from_values(values, CONFIG)
    assert (merged.n, merged.skipped) == (whole.count, 0)
    np.testing.assert_array_equal(merged.q, whole.quantiles(qs))


@pytest.mark.parametrize("tail_size", [0, 3])
def test_native_equals_quantile_summary_on_sliding_windows_with_other_tails(spark, tail_size):
    """No tail and a tail smaller than the windows' bucketed values, on sliding windows
    (each sub-window in two windows): rows identical to the reference summary's."""
    config = SummaryConfig(relative_accuracy=0.01, exact_limit=1_000, tail_size=tail_size)
    spec = WindowSpec.of("1 s", "500 ms", "500 ms")
    values = np.concatenate([DATA_SETS["pareto_tail"][:1_500], DATA_SETS["zeros"][:1_500]])
    frame = _frame(values, keys=2, span_us=2_000_000, seed=4)
    df = spark.createDataFrame(frame, SCHEMA)
    rows = window_quantiles(
        df,
        window="1 s",
        sub_window="500 ms",
        slide="500 ms",
        quantiles=QUANTILES,
        key_col="key",
        value_col="value",
        config=config,
    ).toPandas()
    _assert_same(_got(rows), _expected(frame, spec, QUANTILES, config))


small_values = st.lists(
    st.one_of(
        st.integers(0, 5_000).map(float),
        st.floats(0.0, 1e9, allow_nan=False, allow_infinity=False, allow_subnormal=False),
        st.sampled_from([0.0, 4096.0, 4097.0, 1e-300, -1.0, float("nan")]),
    ),
    min_size=1,
    max_size=80,
)


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=small_values, data=st.data())
def test_any_values_merged_in_any_grouping_give_the_reference_bytes(spark, values, data):
    """Values split into arbitrary groups (merged by Spark in whatever order its partial and
    final aggregations take): the merged summary is the reference summary of all values."""
    register(spark)
    groups = data.draw(st.lists(st.integers(0, 4), min_size=len(values), max_size=len(values)))
    parts = data.draw(st.integers(1, 4))
    df = spark.createDataFrame(
        [(g, v) for g, v in zip(groups, values, strict=True)], "g int, value double"
    ).repartition(parts)
    row = (
        df.groupBy("g")
        .agg(F.expr("aomg_summary_agg(value, 0.01, 1000, 5) AS s"))
        .agg(F.expr("aomg_summary_merge(s) AS s"))
        .first()
    )
    config = SummaryConfig(relative_accuracy=0.01, exact_limit=1_000, tail_size=5)
    expected = QuantileSummary.from_values(np.asarray(values), config, on_invalid="skip")
    assert bytes(row.s) == expected.to_bytes()


def _jobs(spark) -> set[int]:
    return set(spark.sparkContext.statusTracker().getJobIdsForGroup(None))


@pytest.mark.parametrize(
    ("override", "error", "message"),
    [
        ({"key_col": "nope"}, ValueError, "key_col='nope' is not a column"),
        ({"value_col": "label"}, TypeError, "value_col='label' must be numeric"),
        ({"sub_window": "300 ms"}, ValueError, "does not divide the window"),
        ({"quantiles": [0.5, 1.5]}, ValueError, "outside \\[0, 1\\]"),
        ({"quantiles": [-0.1]}, ValueError, "outside \\[0, 1\\]"),
        ({"config": "fast"}, TypeError, "config must be a SummaryConfig"),
    ],
)
def test_bad_arguments_fail_before_any_spark_job(spark, override, error, message):
    frame = _frame(np.arange(10.0), keys=2, span_us=1_000_000).assign(label="x")
    df = spark.createDataFrame(frame, SCHEMA + ", label string")
    good = {
        "window": "1 s",
        "sub_window": "250 ms",
        "quantiles": [0.5],
        "key_col": "key",
        "value_col": "value",
    }
    before = _jobs(spark)
    with pytest.raises(error, match=message):
        window_quantiles(df, **{**good, **override})
    assert _jobs(spark) == before
    df.count()  # the tracker does see jobs: the check above could fail
    assert _jobs(spark) != before


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("aomg_summary_agg(value, 0.7)", "alpha=0.7 is outside \\(0, 0.5\\)"),
        ("aomg_summary_agg(value, 0)", "alpha=0.0 is outside \\(0, 0.5\\)"),
        ("aomg_summary_agg(value, value)", "alpha must be a literal number"),
        ("aomg_summary_agg(label)", "value must be numeric, not string"),
        ("aomg_quantile(aomg_summary_agg(value), 1.5)", "quantile 1.5 is outside \\[0, 1\\]"),
        ("aomg_quantiles(aomg_summary_agg(value), array(0.5, -0.1))", "quantile -0.1 is outside"),
        ("aomg_quantile(value, 0.5)", "summary must be binary"),
        ("aomg_summary_merge(value)", "summary must be binary"),
    ],
)
def test_bad_sql_arguments_are_named_before_any_job(spark, sql, message):
    register(spark)
    frame = _frame(np.arange(10.0), keys=2, span_us=1_000_000).assign(label="x")
    df = spark.createDataFrame(frame, SCHEMA + ", label string")
    before = _jobs(spark)
    with pytest.raises(InputError, match=message), errors():
        df.select(F.expr(sql))
    assert _jobs(spark) == before


def test_summaries_of_another_alpha_or_version_are_named(spark):
    register(spark)
    frame = _frame(DATA_SETS["lognormal"][:200], keys=2, span_us=1_000_000)
    df = spark.createDataFrame(frame, SCHEMA)
    mixed = df.groupBy("key").agg(F.expr("aomg_summary_agg(value, 0.01) AS s"))
    other = df.groupBy("key").agg(F.expr("aomg_summary_agg(value, 0.02) AS s"))
    with pytest.raises(InputError, match="cannot merge AOMG summaries of different c"), errors():
        mixed.unionByName(other).agg(F.expr("aomg_summary_merge(s)")).collect()
    old = bytearray(QuantileSummary.from_values([1.0, 2.5], CONFIG).to_bytes())
    old[4] = 1
    blobs = spark.createDataFrame([(bytes(old),)], "s binary")
    with pytest.raises(InputError, match="format version 1; this build reads version 2"), errors():
        blobs.select(F.expr("aomg_quantile(s, 0.5)")).collect()


@pytest.mark.slow  # starts a second JVM (~20 s)
def test_a_session_without_the_jar_gets_one_line_saying_how_to_start_it(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "no_jar.py"
    script.write_text(
        "from pyspark.sql import SparkSession\n"
        "from blaze_errors import ConfigError\n"
        "from streaming.aomg import register\n"
        "spark = SparkSession.builder.master('local[1]').config('spark.ui.enabled', 'false')"
        ".getOrCreate()\n"
        "try:\n"
        "    register(spark)\n"
        "except ConfigError as exc:\n"
        "    print('ERROR:', exc)\n"
        "finally:\n"
        "    spark.stop()\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, check=True
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("ERROR:")]
    assert len(lines) == 1
    assert "cannot load AOMG's SQL functions" in lines[0] and "with_aomg_jar" in lines[0]
