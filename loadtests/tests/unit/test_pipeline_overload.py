"""Pure parts of the pipeline overload run: histogram parsing, quantiles, the backlog."""

import math
from concurrent.futures import Future

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from loadtests.pipeline_overload import (
    Published,
    Sample,
    drained_at,
    histogram_buckets,
    quantile_exact,
    quantile_from_buckets,
    share_at_most,
    share_within,
)

INF = math.inf


def exposition(values: list[float], buckets: tuple[float, ...] = (1, 2, 5, 60)) -> str:
    registry = CollectorRegistry()
    histogram = Histogram("lag_seconds", "lag", ["stream"], buckets=buckets, registry=registry)
    for n, value in enumerate(values):  # two label sets: the buckets are summed over them
        histogram.labels(str(n % 2)).observe(value)
    return generate_latest(registry).decode()


def test_buckets_are_read_from_an_exposition_summed_over_label_sets():
    buckets = histogram_buckets(exposition([0.5, 1.5, 1.7, 3, 100]), "lag_seconds")

    assert buckets == [(1.0, 1), (2.0, 3), (5.0, 4), (60.0, 4), (INF, 5)]


def test_a_missing_histogram_is_an_error_not_an_empty_one():
    with pytest.raises(ValueError, match="no histogram"):
        histogram_buckets(exposition([1]), "other_seconds")


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        (0.0, 0.0),
        (0.1, 0.5),  # rank 1 of 10, all 2 in the first bucket [0, 1]: halfway
        (0.2, 1.0),
        (0.5, 2.0 + 3 * (5 - 2) / 6),  # rank 5: 3 into the (2, 5] bucket of 6
        (0.8, 5.0),
        (0.95, 5.0),  # in the +Inf bucket: the highest finite bound, as Prometheus says
    ],
)
def test_quantiles_are_interpolated_inside_their_bucket(q, expected):
    buckets = [(1.0, 2.0), (2.0, 2.0), (5.0, 8.0), (INF, 10.0)]

    assert quantile_from_buckets(q, buckets) == pytest.approx(expected)


def test_an_empty_bucket_is_skipped_and_an_empty_histogram_has_no_quantile():
    assert quantile_from_buckets(0.5, [(1.0, 0.0), (2.0, 0.0), (5.0, 4.0), (INF, 4.0)]) == 3.5
    assert math.isnan(quantile_from_buckets(0.5, [(1.0, 0.0), (INF, 0.0)]))
    with pytest.raises(ValueError, match=r"\+Inf"):
        quantile_from_buckets(0.5, [(1.0, 1.0)])


def test_the_share_within_the_objective_is_read_at_its_bucket_bound():
    buckets = [(30.0, 90.0), (60.0, 99.0), (INF, 100.0)]

    assert share_within(60.0, buckets) == 0.99
    with pytest.raises(ValueError, match="not a bucket bound"):
        share_within(45.0, buckets)


def test_exact_quantiles_interpolate_between_closest_ranks():
    values = [float(v) for v in range(1, 101)]  # 1 … 100

    assert quantile_exact(0.5, values) == pytest.approx(50.5)
    assert quantile_exact(0.99, values) == pytest.approx(99.01)
    assert quantile_exact(1.0, values) == 100.0
    assert math.isnan(quantile_exact(0.5, []))


def test_the_backlog_never_goes_below_zero_and_drains_once_all_are_stored():
    samples = [
        Sample(t=0.0, published=0, stored=0, oldest_unacked_s=0),
        Sample(t=0.5, published=800, stored=300, oldest_unacked_s=0.4),
        Sample(t=1.0, published=1000, stored=1000, oldest_unacked_s=0.9),  # published all?
        Sample(t=1.5, published=1000, stored=1003, oldest_unacked_s=0),  # redelivered copies
    ]

    assert [s.backlog for s in samples] == [0, 500, 0, 0]
    assert drained_at(samples, 1000) == 1.0
    assert drained_at(samples[:2], 1000) is None
    assert drained_at(samples, 1000, share=0.3) == 1.0  # 300 stored, but not all published


def test_the_exact_share_within_the_objective_counts_values_at_the_bound():
    assert share_at_most(60.0, [1.0, 59.9, 60.0, 60.1]) == 0.75
    assert math.isnan(share_at_most(60.0, []))


def test_published_counts_accepted_and_failed_publishes():
    counter = Published()
    accepted, failed = Future(), Future()
    accepted.set_result("id-1")
    failed.set_exception(TimeoutError())

    counter.settle(accepted)
    counter.settle(failed)

    assert (counter.accepted, counter.failed) == (1, 1)
