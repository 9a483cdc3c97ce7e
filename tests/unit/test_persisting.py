"""Whether persisting a dataset pays (costmodel.persisting), and the worker-side measurements
it is decided from (lineage.timing) — no JVM."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from costmodel.persisting import PersistCase
from lineage.timing import LOAD_SAMPLE, TimesParam, timed


class _Accumulator:
    def __init__(self):
        self.value = TimesParam().zero({})

    def add(self, term):
        self.value = TimesParam().addInPlace(self.value, term)


def test_own_time_leaves_out_what_the_consumer_does_with_each_record():
    acc = _Accumulator()

    def costly(split, rows):  # 10 ms of the dataset's own work per record
        for row in rows:
            time.sleep(0.01)
            yield row

    for _ in timed(costly, acc, token=1)(0, iter(range(3))):
        time.sleep(0.05)  # the consumer: pickling the batch, the JVM storing it
    measured = acc.value[(1, 0)]
    assert measured.records == 3
    assert measured.own_ms >= 30.0
    assert measured.wall_ms - measured.own_ms >= 150.0
    assert measured.own_ms < 100.0  # the consumer's 150 ms are not the dataset's


def test_unpickling_is_sampled_only_from_partitions_with_records_to_spare():
    acc = _Accumulator()
    run = timed(lambda split, rows: ((r, str(r) * 20) for r in rows), acc, token=2)
    assert len(list(run(0, iter(range(LOAD_SAMPLE))))) == LOAD_SAMPLE
    assert len(list(run(1, iter(range(100 * LOAD_SAMPLE))))) == 100 * LOAD_SAMPLE
    few, many = acc.value[(2, 0)], acc.value[(2, 1)]
    assert few.load_ms is None  # sampling would pickle the whole partition again
    assert many.load_ms > 0 and many.records == 100 * LOAD_SAMPLE


def test_a_partition_timed_by_wall_alone_reports_no_split():
    acc = _Accumulator()
    run = timed(lambda split, rows: (r * 2 for r in rows), acc, token=4, split=False)
    assert list(run(0, iter(range(500)))) == list(range(0, 1000, 2))
    measured = acc.value[(4, 0)]
    assert measured.wall_ms >= 0 and measured.own_ms is None and measured.load_ms is None


def test_a_cheap_map_repeating_its_input_does_not_pay_a_costly_one_does():
    # scored = points.map(lambda p: (p.y, p.x, p.x @ w)): reading the stored copy unpickles as
    # much as recomputing it from points; the copy had to be pickled and stored first
    cheap = PersistCase(reads=2, own_ms=120.0, wall_ms=330.0, load_ms=115.0)
    assert cheap.store_ms == 210.0 and cheap.saved_ms == 5.0 and not cheap.pays
    # a costly parse whose output is small: the second read saves almost all of it
    costly = PersistCase(reads=2, own_ms=900.0, wall_ms=960.0, load_ms=20.0)
    assert costly.pays and costly.gain_ms == pytest.approx(880.0 - 60.0)
    # read once: persisting never pays
    assert not PersistCase(reads=1, own_ms=900.0, wall_ms=960.0, load_ms=20.0).pays


finite = st.floats(min_value=0.0, max_value=1e5, allow_nan=False)


@given(finite, finite, finite, finite, st.floats(min_value=1.0, max_value=50.0))
def test_more_reads_never_make_a_paying_dataset_not_pay(own, extra, load, store, reads):
    case = PersistCase(reads=reads, own_ms=own, wall_ms=own + store, load_ms=load)
    more = PersistCase(reads=reads + 1, own_ms=own, wall_ms=own + store, load_ms=load)
    if own >= load:
        assert more.gain_ms >= case.gain_ms
        assert more.pays or not case.pays
    dearer = PersistCase(reads=reads, own_ms=own, wall_ms=own + store + extra, load_ms=load)
    assert dearer.gain_ms <= case.gain_ms  # a dearer store never makes it pay more


def test_copies_placed_on_disk_add_their_write_and_reads_to_the_case():
    # kmeans.common's assignment on the second data shape: in memory persisting loses 9 ms of
    # 245 ms per partition, a coin flip run to run; every copy on disk adds W once and Rd per
    # later read, and the verdict no longer rests on the noise
    in_memory = PersistCase(reads=2, own_ms=299.1, wall_ms=544.4, load_ms=62.5)
    on_disk = PersistCase(
        reads=2,
        own_ms=299.1,
        wall_ms=544.4,
        load_ms=62.5,
        disk_share=1.0,
        disk_write_ms=2.8,
        disk_read_ms=9.0,
    )
    assert on_disk.store_ms == pytest.approx(in_memory.store_ms + 2.8)
    assert on_disk.saved_ms == pytest.approx(in_memory.saved_ms - 9.0)
    half = replace(on_disk, disk_share=0.5)
    assert half.gain_ms == pytest.approx(in_memory.gain_ms - (2.8 + 9.0) / 2)
    with pytest.raises(ValueError, match="disk_share"):
        replace(on_disk, disk_share=1.5)


@given(finite, finite, finite, finite, st.floats(min_value=0.0, max_value=1.0), finite, finite)
def test_a_larger_disk_share_never_makes_persisting_pay_more(own, store, load, reads, share, w, rd):
    base = PersistCase(
        reads=1.0 + reads / 1e4,
        own_ms=own,
        wall_ms=own + store,
        load_ms=load,
        disk_write_ms=w,
        disk_read_ms=rd,
    )
    assert replace(base, disk_share=share).gain_ms <= base.gain_ms + 1e-6 * (1 + abs(base.gain_ms))
