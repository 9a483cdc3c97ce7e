"""Predictors: growth extrapolation, input-scale extrapolation, fallback, error report."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costmodel import CostModel, DiskCost, PartitionMetrics, RddSpec
from costmodel.predict import GrowthFit, Predictors, _line, dataset_key, fit_growth


@pytest.mark.parametrize(
    ("kind", "truth"),
    [
        ("linear", lambda i: 100.0 + 40.0 * i),
        ("geometric", lambda i: 100.0 * 1.3**i),
    ],
)
def test_growth_is_extrapolated_not_copied(kind, truth):
    iters = list(range(6))
    fit = fit_growth(iters, [1.0] * 6, [truth(i) for i in iters])
    assert fit.kind == kind
    assert fit(9, 1.0) == pytest.approx(truth(9), rel=1e-6)


def test_too_few_points_fall_back_to_the_last_observation():
    fit = fit_growth([0, 1], [1.0, 1.0], [10.0, 30.0])
    assert fit.kind == "last"
    assert fit(5, 1.0) == 30.0
    assert fit(5, 2.0) == 60.0  # rescaled to the asked input scale


def test_sampled_profile_predicts_the_full_input():
    bank = Predictors()
    for iteration in range(4):
        for split in range(4):
            bank.observe("d", iteration, split, 1e4 * (1 + 0.5 * iteration), 5.0, scale=0.01)
    guess = bank.predict("d", iteration=5, scale=1.0)
    assert guess.size_bytes == pytest.approx(1e6 * 3.5, rel=1e-6)
    assert guess.compute_ms == pytest.approx(500.0, rel=1e-6)


def test_scale_exponent_is_learnt_from_two_scales():
    iters, scales, values = [], [], []
    for scale in (0.1, 0.4):
        for i in range(4):
            iters.append(i)
            scales.append(scale)
            values.append(1000 * scale**0.5 * (1 + i))  # sub-linear in the input
    fit = fit_growth(iters, scales, values)
    assert fit.c == pytest.approx(0.5, abs=0.05)
    assert fit(2, 1.0) == pytest.approx(3000, rel=0.1)


def test_partition_skew_is_kept():
    bank = Predictors()
    for iteration in range(5):
        for split, share in enumerate((0.5, 1.0, 1.5)):
            bank.observe("d", iteration, split, 100.0 * share * (1 + iteration), 10.0 * share)
    assert bank.predict("d", 5, split=2).size_bytes == pytest.approx(150.0 * 6)
    assert bank.predict("d", 5, split=0).compute_ms == pytest.approx(5.0)


def test_error_report_scores_predictions_made_before_the_data_arrived():
    bank = Predictors()
    for iteration in range(6):
        bank.observe("d", iteration, 0, 100.0 + 10 * iteration, 1.0)
    report = bank.error_report()
    assert report["overall"]["predictions"] == 5
    # iterations 1-2 were predicted by the last value (10/110 and 10/120 off), 3-5 exactly
    assert report["overall"]["median_size_error"] == pytest.approx(0.0, abs=1e-9)
    assert report["datasets"]["d"]["median_time_error"] == pytest.approx(0.0)


def test_noisy_growing_trace_stays_within_ten_percent():
    rng = np.random.default_rng(7)
    bank = Predictors()
    for iteration in range(10):
        for split in range(8):
            noise = rng.normal(1.0, 0.03)
            bank.observe("d", iteration, split, 1e6 * 1.15**iteration * noise, 20.0 * noise)
    assert bank.error_report()["overall"]["median_size_error"] < 0.10


def test_rdds_of_one_dataset_are_numbered_by_iteration():
    bank = Predictors()
    key = dataset_key("map at pr.py:12", ["join at pr.py:11"])
    assert bank.register_rdd(40, key) == (key, 0)
    assert bank.register_rdd(52, key) == (key, 1)
    assert bank.locate(40) == (key, 0)


def test_estimator_feeds_the_cost_model():
    bank = Predictors()
    for rdd_id, iteration in ((10, 0), (11, 1), (12, 2)):
        bank.observe_rdd(rdd_id, "ranks", 0, 1000.0 * (iteration + 1), 10.0 * (iteration + 1))
    specs = [RddSpec(10 + i, call_site="ranks") for i in range(4)]
    model = CostModel(
        specs,
        {(10, 0): PartitionMetrics(1000.0, 10.0)},
        DiskCost(1.0, 1.0),
        estimator=bank.estimator(lambda spec: spec.call_site),
    )
    assert model.size_bytes((13, 0)) == pytest.approx(4000.0)  # iteration 3, extrapolated
    assert model.compute_ms((13, 0)) == pytest.approx(40.0)


def test_round_trip_keeps_the_fits():
    bank = Predictors()
    for iteration in range(4):
        bank.observe("d", iteration, 0, 10.0 * 2**iteration, 1.0)
    again = Predictors.from_dict(bank.to_dict())
    assert again.predict("d", 6) == bank.predict("d", 6)
    assert again.datasets["d"].fits()[0].kind == "geometric"


def test_unknown_fit_kind_is_rejected():
    with pytest.raises(ValueError, match="unknown growth model kind 'cubic'"):
        GrowthFit.from_dict({"kind": "cubic", "a": 1})


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(1.0, 1e9), min_size=1, max_size=8),
    st.floats(0.001, 10.0),
    st.integers(0, 20),
)
def test_predictions_are_finite_and_non_negative(values, scale, iteration):
    fit = fit_growth(list(range(len(values))), [1.0] * len(values), values)
    guess = fit(iteration, scale)
    assert np.isfinite(guess) and guess >= 0


def test_two_scales_separate_task_overhead_from_work():
    bank = Predictors()
    for scale in (0.01, 0.05):
        for iteration in range(3):
            size = 4e6 * scale
            bank.observe("d", iteration, 0, size, 15.0 + 40.0 * size / 1e6, scale=scale)
    guess = bank.predict("d", 3, scale=1.0)
    assert guess.size_bytes == pytest.approx(4e6)
    assert guess.compute_ms == pytest.approx(15.0 + 160.0, rel=1e-6)
    assert bank.datasets["d"].fits()[1].kind == "affine_size"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3000), st.floats(0.0, 1e9)), min_size=1, max_size=40))
def test_closed_form_line_equals_scikit_learn(points):
    from sklearn.linear_model import LinearRegression

    x = np.array([p[0] for p in points], dtype=float)
    y = np.array([p[1] for p in points], dtype=float)
    model = LinearRegression().fit(x.reshape(-1, 1), y)
    a, b = _line(x, y)
    scale = max(1.0, float(np.abs(y).max()))
    assert a == pytest.approx(float(model.intercept_), abs=1e-6 * scale)
    assert b == pytest.approx(float(model.coef_[0]), abs=1e-6 * scale)


def test_a_long_program_keeps_a_bounded_history_and_refits_once_per_new_observation(
    monkeypatch,
):
    import costmodel.predict as predict

    fits = []
    real = predict.fit_growth
    monkeypatch.setattr(predict, "fit_growth", lambda *a, **k: fits.append(1) or real(*a, **k))
    bank = Predictors()
    for generation in range(2000):
        bank.observe_rdd(10 + generation, "site", 0, 1000.0, 5.0)
        before = len(fits)
        for _ in range(3):  # the manager asks several times between two observations
            assert bank.predict("site", split=0).size_bytes == pytest.approx(1000.0)
        assert len(fits) - before <= 2  # size and time fits, once
    predictor = bank.datasets["site"]
    assert len(predictor.points) == predict.HISTORY
    assert len(predictor._fits) <= 2
    assert len(bank._rdd_index) <= predict.MEMBER_WINDOW
    assert len(bank.errors) <= predict.ERROR_WINDOW
    assert bank.error_report()["overall"]["predictions"] == 1999
    assert bank.locate(10 + 1999) == ("site", 1999)  # iteration numbers still count all


def test_the_score_of_a_new_generation_reuses_the_fit_its_prediction_was_made_with(monkeypatch):
    """The manager predicts a generation when the program persists it, then scores that
    prediction when its first partition is stored: both are fits of the same older points,
    so the second is not fitted again — and scores the very prediction that was made."""
    import costmodel.predict as predict

    fits = []
    real = predict.fit_growth
    monkeypatch.setattr(predict, "fit_growth", lambda *a, **k: fits.append(1) or real(*a, **k))
    bank = Predictors()
    made = []
    for generation in range(40):
        before = len(fits)
        guess = bank.predict("site", split=0)  # at persist
        size = 1000.0 * (1.05**generation)
        bank.observe_rdd(10 + generation, "site", 0, size, 2.0 + generation)  # stored
        if guess is not None:
            made.append(guess.size_bytes)
            assert len(fits) - before <= 2  # size and time fits, for both questions
    scored = [record.predicted_size for record in bank.errors]
    assert scored == pytest.approx(made[: len(scored)]) and len(scored) == len(made)
