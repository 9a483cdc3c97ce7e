"""The driver-side half of the plugin in Python: orders queued, outcomes and timings read back.

The JVM driver half is replaced by a small in-memory mailbox with the same four calls; the
real one is driven through Spark in tests/spark and tests/e2e.
"""

from __future__ import annotations

import logging
import time

from blaze.orders import IN_FLIGHT_EXPIRY_S, NO_PLUGIN_HINT, ExecutorOrders


class _Mailbox:
    def __init__(self, active=True, registered=("0", "1")) -> None:
        self.active = active
        self.halves = set(registered)
        self.queued: list[tuple] = []
        self.calls = 0  # order_all calls (py4j round trips)
        self.lines: list[str] = []
        self.samples: list[tuple[str, int, int]] = []
        self.for_good: list[bool] = []

    def registered(self):
        return set(self.halves)

    def order_all(self, orders):
        self.calls += 1
        refused = [order for order in orders if order[0] not in self.halves]
        for executor_id, rdd_id, split_index, action in orders:
            if executor_id in self.halves:
                self.queued.append((executor_id, rdd_id, split_index, action != 0))
                self.for_good.append(action == 2)
        return refused

    def outcomes(self):
        lines, self.lines = self.lines, []
        return lines

    def timings(self):
        samples, self.samples = self.samples, []
        return samples

    def live_executors(self):
        return set(self.halves)


def test_orders_go_to_the_executor_that_holds_the_block_and_outcomes_are_counted():
    mailbox = _Mailbox()
    orders = ExecutorOrders(mailbox)
    assert orders.spill(3, 1, "0") and orders.drop(4, 2, "1")
    assert orders.spill(6, 0, "1", for_good=True)
    assert mailbox.queued == []  # queued here until the worker flushes
    orders.flush()
    assert mailbox.calls == 1  # all three in one round trip
    assert mailbox.queued == [("0", 3, 1, True), ("1", 4, 2, False), ("1", 6, 0, True)]
    assert mailbox.for_good == [False, False, True]
    mailbox.lines = ["0 3 1 spill spilled", "1 4 2 drop dropped", "0 5 0 spill not_in_memory"]
    mailbox.samples = [("0", 300, 400), ("1", 500, 600), ("0", 700, 800)]
    orders.collect(fresh=True)
    report = orders.report()
    assert report["order_outcomes"] == {
        "drop_dropped": 1,
        "spill_not_in_memory": 1,
        "spill_spilled": 1,
    }
    assert orders.late_evictions == 1  # Spark had moved it before the order arrived
    assert report["plugin_ask_ms_median"] == 0.5
    assert report["plugin_task_start_ms_median"] == 0.6
    assert report["plugin_task_samples"] == 3


def test_an_order_is_in_flight_until_its_executor_reports_it(monkeypatch):
    mailbox = _Mailbox()
    orders = ExecutorOrders(mailbox)
    orders.drop(3, 1, "0")
    orders.drop(3, 1, "0")  # a second order for the same block before the first is done
    orders.spill(4, 0, "1")
    assert not orders.drop(5, 0, "9")  # not queued: never in flight
    assert orders.in_flight() == {(3, 1, "0"), (4, 0, "1")}
    mailbox.lines = ["0 3 1 drop dropped", "1 4 0 spill spilled"]
    orders.collect(fresh=True)
    assert orders.in_flight() == {(3, 1, "0")}
    mailbox.lines = ["0 3 1 drop not_found"]
    orders.collect(fresh=True)
    assert orders.in_flight() == set()
    orders.spill(6, 2, "1")  # its executor is stuck: the order expires
    later = time.monotonic() + IN_FLIGHT_EXPIRY_S + 1
    monkeypatch.setattr(time, "monotonic", lambda: later)
    assert orders.in_flight() == set()


def test_settle_waits_for_the_orders_in_flight_and_not_for_a_lost_executor():
    mailbox = _Mailbox()
    orders = ExecutorOrders(mailbox)
    orders.drop(3, 1, "0")
    orders.spill(4, 0, "1")
    assert not orders.settle(timeout_s=0.05)  # nothing reported yet
    mailbox.lines = ["0 3 1 drop dropped"]
    assert not orders.settle(timeout_s=0.05)  # executor 1's order is still on its way
    assert orders.in_flight() == {(4, 0, "1")}
    mailbox.halves.discard("1")  # executor 1 stopped fetching: it is lost
    assert orders.settle(timeout_s=0.05)
    assert orders.in_flight() == set()
    assert orders.report()["order_outcomes"] == {"drop_dropped": 1}  # settle collected it


def test_an_executor_without_a_plugin_half_is_named_once_and_nothing_is_queued(caplog):
    mailbox = _Mailbox(registered=("0",))
    orders = ExecutorOrders(mailbox)
    with caplog.at_level(logging.WARNING, logger="blaze"):
        assert not orders.spill(1, 0, "1")
        assert not orders.drop(1, 1, "1")
    orders.flush()
    assert mailbox.queued == []
    assert len([r for r in caplog.records if "executor 1 " in r.getMessage()]) == 1
    assert orders.report()["executors_without_plugin"] == ["1"]


def test_an_executor_half_that_refused_says_why_in_the_log(caplog):
    mailbox = _Mailbox(registered=())
    mailbox.lines = ["0 unavailable the blaze-spark plugin jar was built for Spark 3.5.0"]
    orders = ExecutorOrders(mailbox)
    with caplog.at_level(logging.WARNING, logger="blaze"):
        orders.collect(fresh=True)
    assert any("built for Spark 3.5.0" in r.getMessage() for r in caplog.records)
    assert orders.report()["executors_without_plugin"] == ["0"]


def test_without_the_plugin_one_line_says_what_to_do_and_nothing_is_ordered(caplog):
    with caplog.at_level(logging.WARNING, logger="blaze"):
        orders = ExecutorOrders(_Mailbox(active=False))
    assert [r.getMessage() for r in caplog.records] == [NO_PLUGIN_HINT]
    assert "blaze.session(" in NO_PLUGIN_HINT
    assert not orders.spill(1, 0, "0")
    assert orders.report()["plugin"] is False


def test_an_order_refused_at_the_flush_is_no_longer_in_flight_and_is_a_surprise(caplog):
    mailbox = _Mailbox()
    orders = ExecutorOrders(mailbox)
    assert orders.drop(3, 1, "1") and orders.spill(4, 0, "0")
    mailbox.halves.discard("1")  # its half went away after it registered
    with caplog.at_level(logging.WARNING, logger="blaze"):
        orders.flush()
    assert mailbox.queued == [("0", 4, 0, True)]
    assert orders.in_flight() == {(4, 0, "0")}
    assert orders.surprises == 1  # the resync corrects the book's "dropped"
    assert any("executor 1 " in r.getMessage() for r in caplog.records)
    assert not orders.drop(5, 0, "1")  # and it is not asked again


def test_an_executor_that_registered_after_the_first_look_gets_its_orders():
    mailbox = _Mailbox(registered=("0",))
    orders = ExecutorOrders(mailbox)
    assert orders.drop(1, 0, "0")
    mailbox.halves.add("1")
    assert orders.drop(2, 0, "1")
    orders.flush()
    assert mailbox.queued == [("0", 1, 0, False), ("1", 2, 0, False)]


def test_a_job_end_reads_the_outcomes_at_most_once_a_second(monkeypatch):
    mailbox = _Mailbox()
    orders = ExecutorOrders(mailbox)
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    orders.drop(3, 1, "0")
    orders.collect()  # sends the order, reads (nothing yet)
    mailbox.lines = ["0 3 1 drop dropped"]
    now[0] += 0.2
    orders.collect()  # the next job's end: not read yet
    assert orders.in_flight() == {(3, 1, "0")} and mailbox.lines
    now[0] += 1.0
    orders.collect()
    assert orders.in_flight() == set() and not mailbox.lines
