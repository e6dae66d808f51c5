"""`make bench-scale`: read latencies and load rate as one table grows to 1 M rows and more.

Starts its own bqemulator (REST and gRPC, in memory) on free loopback ports — a running
`make run` is left alone — creates the table, and grows it to each size of `--sizes`
(100,000 and 1,000,000 by default; 5,000,000 with `--sizes 100000,1000000,5000000`, when
the measured estimate says the machine holds it) through the write path of the
subscriber and `manage.py seed`: `repository.records_insert`, AppendRows on the table's
default stream. 5 % of the rows re-use an earlier id with a newer `published_at` (the
latest wins, so the distinct ids are fewer than the rows). At each size it prints:

  load rows/s        rows written per second of this step, wall clock (rows are built
                     in the same thread); `append rows/s` counts only the time spent
                     inside records_insert
  point p50/p95      repository.record_get of random existing ids (the API's cache is not
                     in the way: the repository itself), over `--reads` reads
  first page         records_list(limit=100)
  offset @90 %       records_list(limit=100, offset=0.9 × distinct ids)
  cursor @90 %       records_list(limit=100, after=the id just before that offset)
  count              records_count() (COUNT(DISTINCT id), uncached)

Pages and the count are the median of `--repeats` runs, and their rows are checked
against the ids written (and a few repeated ids against their latest version), so a
fast wrong answer fails the run. The growth table ends the output; everything also goes
to bench-results/scale.json. Bounded: loopback only, fixed sizes, a deadline on every
call, everything stopped at the end.

bqemulator runs without its table copy after each write (scripts/bqemulator_serial.py;
`--copies` keeps it): that copy is the emulator's time travel, which BigQuery does not
charge per write, and it holds Σ(table size) rows in memory.

Rows take their names from a pool of Faker records (Faker makes ~11,000 a second here,
which would time Faker rather than the write path); every row gets a fresh random id.
"""

import argparse
import gc
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from records.entities import Record, StoredRecord
from scripts.devstack import REPO, Stack, StackError, free_port

T = TypeVar("T")

PAGE = 100
DEPTH = 0.9
# Beyond this share of the memory available, a size is not attempted.
MEMORY_SHARE = 0.6


class RowSource:
    """Rows for the table, deterministic with a seed: fresh random ids, and a share of rows
    that re-use an earlier id with other names and a newer `published_at`.

    `ids` holds every distinct id in the order first written; `latest` the newest record
    of each id written more than once (what a read must return)."""

    def __init__(
        self,
        *,
        pool: Sequence[Record],
        seed: int,
        repeat_share: float = 0.05,
        start: datetime = datetime(2026, 1, 1, tzinfo=UTC),
    ):
        if not pool or not 0 <= repeat_share < 1:
            raise ValueError("a non-empty pool and a repeat share in [0, 1) are needed")
        self._pool = pool
        self._random = random.Random(seed)
        self._repeat_share = repeat_share
        self._start = start
        self.rows = 0
        self.ids: list[str] = []
        self.latest: dict[str, Record] = {}

    def take(self, count: int) -> list[StoredRecord]:
        out = []
        draw = self._random.random
        for _ in range(count):
            names = self._pool[self._random.randrange(len(self._pool))]
            if self.ids and draw() < self._repeat_share:
                record_id = self.ids[self._random.randrange(len(self.ids))]
                record = Record(record_id, names.nombre, names.apellido, names.pais)
                self.latest[record_id] = record
            else:
                record_id = str(uuid.UUID(int=self._random.getrandbits(128), version=4))
                record = Record(record_id, names.nombre, names.apellido, names.pais)
                self.ids.append(record_id)
            # One microsecond a row: a later row of an id is always the newer one.
            published = self._start + timedelta(microseconds=self.rows)
            out.append(StoredRecord(record=record, published_at=published))
            self.rows += 1
        return out


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (share in (0, 1]) of `values`."""
    if not values or not 0 < share <= 1:
        raise ValueError("values and a share in (0, 1] are needed")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * share // 1))  # ceil without floats drifting
    return ordered[int(rank) - 1]


def depth_cursor(sorted_ids: Sequence[str], depth: float) -> tuple[int, str]:
    """The offset at `depth` of the ids in order, and the cursor (`after`) that starts the
    same page: the id just before it."""
    offset = int(len(sorted_ids) * depth)
    if not 1 <= offset < len(sorted_ids):
        raise ValueError("the depth must fall inside the ids")
    return offset, sorted_ids[offset - 1]


def size_estimate(*, rows: int, measured: Sequence[tuple[int, float]], fixed: float = 0.0) -> float:
    """A linear estimate at `rows` from (rows, value) points measured at growing sizes:
    the slope of the last two points (or of the origin and the only one), plus `fixed`."""
    if not measured:
        raise ValueError("at least one measured point is needed")
    (r0, v0), (r1, v1) = ((0, fixed), measured[0]) if len(measured) == 1 else measured[-2:]
    slope = (v1 - v0) / (r1 - r0)
    return v1 + slope * (rows - r1)


@dataclass
class SizeResult:
    rows: int
    distinct_ids: int
    load_seconds: float
    load_rows_per_s: float
    append_rows_per_s: float
    point_p50_ms: float
    point_p95_ms: float
    first_page_ms: float
    offset_90_ms: float
    cursor_90_ms: float
    count_ms: float
    emulator_rss_mib: float


COLUMNS = (
    ("rows", "rows", "{:,}"),
    ("distinct_ids", "distinct", "{:,}"),
    ("load_rows_per_s", "load rows/s", "{:,.0f}"),
    ("append_rows_per_s", "append rows/s", "{:,.0f}"),
    ("point_p50_ms", "point p50 ms", "{:,.1f}"),
    ("point_p95_ms", "point p95 ms", "{:,.1f}"),
    ("first_page_ms", "first page ms", "{:,.1f}"),
    ("offset_90_ms", "offset@90% ms", "{:,.1f}"),
    ("cursor_90_ms", "cursor@90% ms", "{:,.1f}"),
    ("count_ms", "count ms", "{:,.1f}"),
    ("emulator_rss_mib", "emulator RSS MiB", "{:,.0f}"),
)


def growth_table(results: Sequence[SizeResult], *, markdown: bool = False) -> str:
    """The results one size a line, as aligned text or a Markdown table."""
    heads = [head for _, head, _ in COLUMNS]
    cells = [[fmt.format(getattr(r, key)) for key, _, fmt in COLUMNS] for r in results]
    if markdown:
        lines = ["| " + " | ".join(heads) + " |", "|" + "---:|" * len(heads)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(heads)]
    return "\n".join(
        "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
        for row in [heads, *cells]
    )


def targets(results: Sequence[SizeResult]) -> dict[str, float | None]:
    """The issue's two read targets, as ratios (each met when ≤ 2): the cursor page at 90 %
    depth over the first page at 1 M rows; point-read p50 at 1 M over 100 k rows."""
    by_rows = {r.rows: r for r in results}
    big, small = by_rows.get(1_000_000), by_rows.get(100_000)
    return {
        "cursor_90_over_first_page_1m": (
            round(big.cursor_90_ms / big.first_page_ms, 2) if big else None
        ),
        "point_p50_1m_over_100k": (
            round(big.point_p50_ms / small.point_p50_ms, 2) if big and small else None
        ),
    }


PLOTTED = (
    ("point_p50_ms", "point read p50", "o"),
    ("first_page_ms", "first page", "s"),
    ("offset_90_ms", "page at 90 % by offset", "^"),
    ("cursor_90_ms", "page at 90 % by cursor", "v"),
    ("count_ms", "count", "D"),
)


def _minor_label(value: float, _: object) -> str:
    """Label 2× and 5× of each power of ten: enough to read a log axis."""
    leading = value / 10 ** int(f"{value:e}".split("e")[1])
    return f"{value:g}" if round(leading) in (2, 5) else ""


def plot_growth(results: Sequence[SizeResult], path: Path, *, subtitle: str) -> Path:
    """Each read's latency against the table's size, log-log: a flat line is a read whose
    cost does not grow with the table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    rows = [r.rows for r in results]
    for key, label, marker in PLOTTED:
        ax.plot(rows, [getattr(r, key) for r in results], marker=marker, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(rows, [f"{n / 1e6:g} M" if n >= 1e6 else f"{n / 1e3:g} k" for n in rows])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(_minor_label))
    ax.set_xlabel("rows in the table")
    ax.set_ylabel("latency (ms, median; point read p50)")
    ax.set_title(f"Reads as one table grows (bqemulator)\n{subtitle}", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --- against the emulator ----------------------------------------------------------------
def timed(call: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    value = call()
    return (time.perf_counter() - started) * 1000, value


def median_ms(call: Callable[[], T], repeats: int, check: Callable[[T], None]) -> float:
    times = []
    for _ in range(repeats):
        elapsed, value = timed(call)
        check(value)
        times.append(elapsed)
    return statistics.median(times)


def rss_mib(pid: int) -> float:
    import psutil

    process = psutil.Process(pid)
    processes = [process, *process.children(recursive=True)]
    return sum(p.memory_info().rss for p in processes) / 2**20


def memory_available_mib() -> float:
    import psutil

    return psutil.virtual_memory().available / 2**20


def bigquery_start(stack: Stack, *, rest_port: int, grpc_port: int, copies: bool) -> None:
    """bqemulator in memory, as every local stack starts it: without its table copy per
    write unless `copies`."""
    if copies:
        os.environ["BQEMULATOR_TABLE_COPIES"] = "1"
    stack.start_bigquery_emulator(
        project="latam-bench", rest_port=rest_port, grpc_port=grpc_port, data_dir=None
    )


def load(repository: Any, source: RowSource, rows: int, batch: int) -> tuple[float, float]:
    """Write rows until the source has written `rows`; return (wall s, s inside appends)."""
    started = time.perf_counter()
    appending = 0.0
    # Millions of live rows make each full collection slower; these objects hold no cycles.
    gc.disable()
    try:
        while source.rows < rows:
            chunk = source.take(min(batch, rows - source.rows))
            elapsed, refused = timed(lambda chunk=chunk: repository.records_insert(rows=chunk))
            appending += elapsed / 1000
            if refused:
                raise StackError(f"the warehouse refused {len(refused)} rows: {refused}")
    finally:
        gc.enable()
    return time.perf_counter() - started, appending


def measure(repository: Any, source: RowSource, *, reads: int, repeats: int) -> dict:
    rng = random.Random(len(source.ids))
    sorted_ids = sorted(source.ids)

    def page_is(expected: list[str]) -> Callable[[list[Record]], None]:
        def check(page: list[Record]) -> None:
            if [record.id for record in page] != expected:
                raise StackError("a list page does not hold the ids expected")

        return check

    point = []
    for record_id in rng.sample(source.ids, reads):
        elapsed, record = timed(
            lambda record_id=record_id: repository.record_get(record_id=record_id)
        )
        if record is None:
            raise StackError("a point read missed an id that was written")
        point.append(elapsed)
    for record_id in rng.sample(sorted(source.latest), min(5, len(source.latest))):
        if repository.record_get(record_id=record_id) != source.latest[record_id]:
            raise StackError("a repeated id did not read as its latest version")
    offset, after = depth_cursor(sorted_ids, DEPTH)
    deep = page_is(sorted_ids[offset : offset + PAGE])

    def count_is(total: int) -> None:
        if total != len(source.ids):
            raise StackError(f"count {total}, expected {len(source.ids)} distinct ids")

    return {
        "point_p50_ms": percentile(point, 0.5),
        "point_p95_ms": percentile(point, 0.95),
        "first_page_ms": median_ms(
            lambda: repository.records_list(limit=PAGE), repeats, page_is(sorted_ids[:PAGE])
        ),
        "offset_90_ms": median_ms(
            lambda: repository.records_list(limit=PAGE, offset=offset), repeats, deep
        ),
        "cursor_90_ms": median_ms(
            lambda: repository.records_list(limit=PAGE, after=after), repeats, deep
        ),
        "count_ms": median_ms(repository.records_count, repeats, count_is),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--sizes",
        default="100000,1000000",
        help="comma-separated table sizes in rows, growing (e.g. 100000,1000000,5000000)",
    )
    parser.add_argument("--reads", type=int, default=30, help="point reads per size")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each page and count")
    parser.add_argument("--batch", type=int, default=5000, help="rows per AppendRows request")
    parser.add_argument("--repeat-share", type=float, default=0.05, help="rows re-using an id")
    parser.add_argument(
        "--budget", type=float, default=900, help="skip a size estimated to take longer (s)"
    )
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--plot", default="", help="also draw the growth to this PNG")
    parser.add_argument(
        "--copies",
        action="store_true",
        help="keep bqemulator's table copy after every write (its time travel; see "
        "scripts/bqemulator_serial.py): memory grows with Σ table size",
    )
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    if sizes != sorted(set(sizes)) or sizes[0] < 1000:
        parser.error("--sizes must grow, from at least 1000 rows")

    workdir = Path(tempfile.mkdtemp(prefix="latam-bench-scale-"))
    stack = Stack(log_dir=workdir / "logs")
    rest_port, grpc_port = free_port(), free_port()
    os.environ.update(
        {
            "BIGQUERY_EMULATOR_HOST": f"127.0.0.1:{rest_port}",
            "BIGQUERY_EMULATOR_GRPC_HOST": f"127.0.0.1:{grpc_port}",
            "GCP_PROJECT": "latam-bench",
            "DJANGO_ENV_FILE": os.devnull,
            "DJANGO_SETTINGS_MODULE": "latam.settings",
            # The figures, not the API's 5 s bound, are the point here: a slower answer is
            # measured rather than refused.
            "BIGQUERY_TIMEOUT_SECONDS": "300",
            "LOG_LEVEL": "WARNING",
        }
    )
    import django

    django.setup()
    from django.conf import settings

    from records import wiring
    from records.seeding import records_fake

    source = RowSource(
        pool=list(records_fake(count=20_000, seed=args.seed)),
        seed=args.seed,
        repeat_share=args.repeat_share,
    )
    results: list[SizeResult] = []
    skipped: list[dict] = []
    rss_points: list[tuple[int, float]] = []
    own_points: list[tuple[int, float]] = []
    try:
        bigquery_start(stack, rest_port=rest_port, grpc_port=grpc_port, copies=args.copies)
        emulator_pid = stack.processes["bqemulator"].pid
        idle_rss = rss_mib(emulator_pid)
        own_idle = rss_mib(os.getpid())
        repository = wiring.record_repository()
        repository.table_ensure(location=settings.BIGQUERY_LOCATION)
        for size in sizes:
            if results:
                last = results[-1]
                grow = size - last.rows
                need = size_estimate(rows=size, measured=rss_points, fixed=idle_rss)
                need += size_estimate(rows=size, measured=own_points, fixed=own_idle)
                have = memory_available_mib() + rss_points[-1][1] + own_points[-1][1]
                # Load time, plus the queries' time grown with the table.
                queries = (
                    last.count_ms + last.offset_90_ms + last.first_page_ms + last.cursor_90_ms
                ) * args.repeats + last.point_p95_ms * args.reads
                seconds = grow / last.load_rows_per_s + queries / 1000 * size / last.rows
                print(
                    f"\n{size:,} rows: estimated {need:,.0f} MiB of {have:,.0f} MiB "
                    f"(both processes), {seconds:,.0f} s",
                    flush=True,
                )
                if need > MEMORY_SHARE * have or seconds > args.budget:
                    print(f"{size:,} rows: skipped (over {MEMORY_SHARE:.0%} or the budget)")
                    skipped.append({"rows": size, "estimated_mib": need, "estimated_s": seconds})
                    break
            print(f"\ngrowing the table to {size:,} rows…", flush=True)
            rows_before = source.rows
            wall, appending = load(repository, source, size, args.batch)
            grown = size - rows_before
            print(f"  {grown:,} rows in {wall:.1f} s; measuring…", flush=True)
            figures = measure(repository, source, reads=args.reads, repeats=args.repeats)
            result = SizeResult(
                rows=size,
                distinct_ids=len(source.ids),
                load_seconds=round(wall, 1),
                load_rows_per_s=grown / wall,
                append_rows_per_s=grown / appending,
                emulator_rss_mib=rss_mib(emulator_pid),
                **figures,
            )
            results.append(result)
            rss_points.append((size, result.emulator_rss_mib))
            own_points.append((size, rss_mib(os.getpid())))
            print(growth_table([result]), flush=True)
    finally:
        stack.stop_all()

    print(f"\nGrowth of one table (pages of {PAGE}; {args.repeat_share:.0%} of rows repeat an id)")
    print(growth_table(results))
    ratios = targets(results)
    print(f"\ncursor@90% / first page at 1 M rows: {ratios['cursor_90_over_first_page_1m']} (≤ 2)")
    print(f"point read p50, 1 M / 100 k rows:     {ratios['point_p50_1m_over_100k']} (≤ 2)")
    out = REPO / "bench-results"
    out.mkdir(exist_ok=True)
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gib": round(_memory_total() / 2**30, 1),
            "python": platform.python_version(),
        },
        "command": " ".join(["python -m loadtests.bench_scale", *sys.argv[1:]]),
        "page": PAGE,
        "repeat_share": args.repeat_share,
        "emulator_table_copies": args.copies,
        "sizes": [{k: _round(v) for k, v in asdict(r).items()} for r in results],
        "skipped": skipped,
        "targets": ratios,
    }
    (out / "scale.json").write_text(json.dumps(report, indent=2) + "\n")
    if len(results) > 1 and args.plot:
        subtitle = f"{report['date'][:10]}, {os.cpu_count()} CPUs, {report['command']}"
        print(f"plot: {plot_growth(results, Path(args.plot), subtitle=subtitle)}")
    return 0


def _round(value: float) -> float:
    return round(value, 1) if isinstance(value, float) else value


def _memory_total() -> int:
    import psutil

    return int(psutil.virtual_memory().total)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except StackError as error:
        print(f"bench-scale: {error}", file=sys.stderr)
        sys.exit(1)
