"""The pure parts of `make bench-scale`: rows with repeated ids, percentiles, the cursor at
a depth, the size estimate and the growth table."""

from collections import Counter

import pytest

from loadtests.bench_scale import (
    RowSource,
    SizeResult,
    depth_cursor,
    growth_table,
    percentile,
    size_estimate,
    targets,
)
from records.entities import Record

POOL = [Record(f"p{i}", f"Nombre{i}", f"Apellido{i}", "Chile") for i in range(50)]


def test_rows_repeat_about_the_share_of_ids_and_the_distinct_ids_are_counted():
    source = RowSource(pool=POOL, seed=1, repeat_share=0.05)
    rows = source.take(4000) + source.take(6000)  # the table grows in steps

    counts = Counter(row.record.id for row in rows)
    assert source.rows == 10_000
    assert sorted(source.ids) == sorted(counts)  # every distinct id, once
    repeats = 10_000 - len(counts)
    assert 350 < repeats < 650  # ~5 %
    assert set(source.latest) == {record_id for record_id, n in counts.items() if n > 1}


def test_a_repeated_id_is_newer_and_latest_holds_its_last_version():
    source = RowSource(pool=POOL, seed=2, repeat_share=0.3)
    rows = source.take(2000)

    newest = {}
    for row in rows:
        previous = newest.get(row.record.id)
        assert previous is None or row.published_at > previous.published_at
        newest[row.record.id] = row
    for record_id, record in source.latest.items():
        assert newest[record_id].record == record


def test_rows_are_deterministic_with_a_seed_and_differ_between_seeds():
    first = [row.record for row in RowSource(pool=POOL, seed=3).take(500)]
    again = [row.record for row in RowSource(pool=POOL, seed=3).take(500)]
    other = [row.record for row in RowSource(pool=POOL, seed=4).take(500)]
    assert first == again
    assert first != other


def test_no_repeats_with_a_zero_share():
    source = RowSource(pool=POOL, seed=5, repeat_share=0)
    source.take(1000)
    assert len(source.ids) == 1000
    assert not source.latest


@pytest.mark.parametrize("share", [-0.1, 1.0])
def test_a_repeat_share_outside_0_1_is_refused(share):
    with pytest.raises(ValueError):
        RowSource(pool=POOL, seed=1, repeat_share=share)


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))  # 1..100
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.95) == 95
    assert percentile(values, 1.0) == 100
    assert percentile([7.0], 0.95) == 7.0
    assert percentile([3, 1, 2], 0.5) == 2  # unsorted input


def test_percentile_refuses_no_values():
    with pytest.raises(ValueError):
        percentile([], 0.5)


def test_the_cursor_at_a_depth_starts_the_page_the_offset_starts():
    ids = [f"id{i:03d}" for i in range(200)]
    offset, after = depth_cursor(ids, 0.9)
    assert offset == 180
    assert after == "id179"
    assert [i for i in ids if i > after][:10] == ids[offset : offset + 10]


def test_the_size_estimate_extends_the_last_slope():
    # 100 MiB idle, then 1 MiB per 1,000 rows.
    assert size_estimate(rows=5000, measured=[(1000, 101.0)], fixed=100.0) == 105.0
    assert size_estimate(rows=5000, measured=[(1000, 101.0), (2000, 104.0)]) == 113.0


def _result(rows, *, point, first, cursor):
    return SizeResult(
        rows=rows,
        distinct_ids=rows - rows // 20,
        load_seconds=1.0,
        load_rows_per_s=12345.6,
        append_rows_per_s=20000.0,
        point_p50_ms=point,
        point_p95_ms=point * 2,
        first_page_ms=first,
        offset_90_ms=first * 1.5,
        cursor_90_ms=cursor,
        count_ms=10.0,
        emulator_rss_mib=512.4,
    )


def test_the_growth_table_has_one_aligned_line_per_size():
    table = growth_table([_result(100_000, point=20, first=50, cursor=30)]).splitlines()
    assert len(table) == 2
    assert table[0].split()[:2] == ["rows", "distinct"]
    assert table[1].split()[:3] == ["100,000", "95,000", "12,346"]
    assert len(table[0]) == len(table[1])


def test_the_growth_table_in_markdown():
    lines = growth_table(
        [_result(1000, point=1, first=2, cursor=3), _result(2000, point=1, first=2, cursor=3)],
        markdown=True,
    ).splitlines()
    assert lines[0].startswith("| rows | distinct |")
    assert lines[1].count("---:") == lines[0].count("|") - 1
    assert lines[3].startswith("| 2,000 | 1,900 |")


def test_targets_are_the_two_ratios_of_the_issue():
    results = [
        _result(100_000, point=20, first=50, cursor=30),
        _result(1_000_000, point=30, first=200, cursor=100),
    ]
    assert targets(results) == {
        "cursor_90_over_first_page_1m": 0.5,
        "point_p50_1m_over_100k": 1.5,
    }
    assert targets(results[:1]) == {
        "cursor_90_over_first_page_1m": None,
        "point_p50_1m_over_100k": None,
    }
