"""Drill 1, subscriber crash: SIGKILL the subscriber three times during a 50,000-message run.

The subscriber starts, the messages are published, and the subscriber is killed a few
seconds after each of its starts (no shutdown code runs: batches in memory are lost,
leases lapse) and started again; after the third kill it is left running. Passes when
every record is stored (50,000 distinct ids), the API shows each exactly once (a walk of
GET /records by its Link rel="next", 1,000 a page), and nothing was dead-lettered.
Prints the recovery time: from the last start to the last record queryable.
"""

import json
import time
from collections import Counter

import requests

from ingestion.deadletters import dead_letter_forwarded_by_policy
from loadtests.drills import Checks, Outcome, Report
from loadtests.drills.support import EMULATOR_ENV, Publishing
from loadtests.drills.timeline import Sampler, Timeline, timeline_plot
from loadtests.harness import Pipeline, StackError

NAME = "subscriber_crash"
MESSAGES = 50_000
KILLS = 3
KILL_AFTER_S = 4.0  # after each start: mid-backlog, batches buffered and leases held
STORE_TIMEOUT_S = 150
PAGE = 1000


def api_walk(base_url: str, *, limit: int = PAGE, timeout: float = 120) -> tuple[list[str], int]:
    """Every id GET /records shows, following Link rel="next" from the first page (offset
    pages, then cursor pages, as the API hands them out); and the number of pages. A 503
    (warehouse busy) is asked again after its Retry-After, a few times."""
    deadline = time.monotonic() + timeout
    ids: list[str] = []
    pages, retries = 0, 0
    url: str | None = f"{base_url}/records?limit={limit}"
    with requests.Session() as session:
        while url:
            if time.monotonic() > deadline:
                raise StackError(f"the walk of /records took over {timeout:.0f} s")
            response = session.get(url, timeout=30)
            if response.status_code == 503 and retries < 5:
                retries += 1
                time.sleep(float(response.headers.get("Retry-After", "1")))
                continue
            response.raise_for_status()
            ids += [record["id"] for record in response.json()]
            pages += 1
            url = response.links.get("next", {}).get("url")
    return ids, pages


def drill(report: Report) -> Outcome:
    checks = Checks()
    figures: dict[str, float | int | str] = {"messages": MESSAGES, "kills": KILLS}
    with Pipeline(name="subscriber-crash", env=EMULATOR_ENV) as pipeline:
        payloads = pipeline.fake_payloads(MESSAGES, seed=101)
        published_ids = {json.loads(payload)["id"] for payload in payloads}
        timeline = Timeline()
        with Sampler(timeline, "stored", pipeline.stored_count, interval=0.5):
            pipeline.subscriber_start()
            timeline.event("start", "subscriber started", at=timeline.started)
            publisher = Publishing(
                pipeline,
                payloads,
                then=lambda accepted: timeline.event("publish", "all published", at=accepted),
            )
            publisher.start()
            last_start = 0.0
            for kill in range(1, KILLS + 1):
                time.sleep(KILL_AFTER_S)
                pipeline.kill("subscriber")
                last_start = timeline.event(
                    "kill", f"SIGKILL {kill}, restarted ({timeline.last('stored'):,.0f} stored)"
                )
                pipeline.subscriber_start()
            publisher.finish(120)
            deadline = time.monotonic() + STORE_TIMEOUT_S
            while timeline.last("stored") < MESSAGES and time.monotonic() < deadline:
                time.sleep(0.1)
        stored = pipeline.stored_count()
        all_stored_at = next(
            (t for t, value in timeline.samples["stored"] if value >= MESSAGES), None
        )
        complete = checks.check(
            stored == MESSAGES, f"{stored:,} of {MESSAGES:,} records stored in the time allowed"
        )
        if complete and all_stored_at is not None:
            figures["recovery_s"] = round(all_stored_at - last_start, 1)
            timeline.event("done", "all stored", at=timeline.started + all_stored_at)
        figures["stored"] = stored
        figures["rows_written"] = pipeline.rows_written()  # redelivered copies included
        dead = pipeline.dead_letters(limit=MESSAGES, wait=2)
        figures["dead_lettered"] = len(dead)
        reasons = Counter(
            item.message.attributes.get("error_code")
            or (
                "delivery_attempts_exhausted"
                if dead_letter_forwarded_by_policy(item.message.attributes)
                else "?"
            )
            for item in dead
        )
        checks.check(not dead, f"{len(dead)} valid messages dead-lettered: {dict(reasons)}")

        api, _ = pipeline.api_start()
        walked = time.monotonic()
        shown, pages = api_walk(api)
        figures["api_walk_s"] = round(time.monotonic() - walked, 1)
        figures["api_pages"] = pages
        figures["api_ids"] = len(shown)
        figures["api_shown_twice"] = len(shown) - len(set(shown))
        checks.check(len(shown) == len(set(shown)), "the API showed some ids twice")
        checks.check(
            set(shown) == published_ids,
            f"the API shows {len(set(shown)):,} distinct ids, "
            f"{len(published_ids - set(shown)):,} published ones missing",
        )
    plot = f"drill-{NAME}.png"
    timeline_plot(
        timeline,
        report.path(plot),
        title=f"Drill: subscriber SIGKILLed {KILLS} times during a {MESSAGES:,}-message run",
        series={"stored": "records queryable (distinct ids)"},
        ylabel="records",
    )
    print(
        f"recovery: all {MESSAGES:,} records queryable "
        f"{figures.get('recovery_s', '—')} s after the last start",
        flush=True,
    )
    return checks.outcome(NAME, figures, plot)
