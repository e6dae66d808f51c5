"""Drill 5, poison flood: 10 % hostile messages in a 20,000-message run.

One subscriber takes a warm-up, then a clean run of 20,000 valid messages, then a flood
of 20,000 of which every tenth is hostile: bad JSON, NaN, nesting too deep, not an
object, a missing or null field, wrong types, a 5,000-digit integer, oversize fields,
control characters, a field given twice, binary junk, data over 64 KiB. Passes when every
hostile message is in the dead-letter subscription with the `error_code` of its kind
(each is recognised by its data), nothing else is there, every valid record is stored,
and the flood's throughput is within 20 % of the clean run's.

Throughput is messages settled (stored or dead-lettered) per second from the first
publish until 99 % are settled; the time until the last one is a figure of its own
(`flood_all_settled_s`), since the bulk and the tail behave differently. In the flood
runs so far the last ~100–200 messages (valid ones among them) came back in steps of
~10 s, one lease, after the rest (the flood settled in 11, 49, 20 and 29 s against 10.5 s
clean): messages held somewhere and lapsing, as on the emulator's ended streams
(latam/clients.py). Clean runs never showed it, so the hostile messages may provoke it;
the cause is not established (to do: which messages, and on which stream).
"""

import hashlib
import json
import random
import time
from collections import Counter

from loadtests.drills import Checks, Outcome, Report
from loadtests.drills.support import EMULATOR_ENV, Publishing
from loadtests.drills.timeline import Timeline, timeline_plot
from loadtests.harness import Pipeline

NAME = "poison_flood"
MESSAGES = 20_000
HOSTILE_EVERY = 10  # one message in ten
WARM_UP = 2_000  # the emulators' JIT and caches warm before the clean run is timed
SETTLE_TIMEOUT_S = 120
MIN_THROUGHPUT_RATIO = 0.8
BULK = 0.99  # throughput is timed until this share is settled (the module's docstring)

# Each kind of hostile message → the `error_code` of its dead letter (ingestion/messages.py,
# records/entities.py).
HOSTILE_KINDS: dict[str, str] = {
    "bad_json": "invalid_json",
    "nan": "invalid_json",
    "deep_nesting": "invalid_json",
    "not_object": "not_object",
    "missing_field": "missing_field",
    "null_field": "missing_field",
    "wrong_type": "invalid_field",
    "huge_number": "invalid_field",
    "oversize_field": "invalid_field",
    "control_chars": "invalid_field",
    "duplicate_key": "invalid_field",
    "binary_junk": "not_utf8",
    "too_large": "too_large",
}


def hostile_payload(kind: str, n: int, rng: random.Random) -> bytes:
    """The `n`th hostile message of `kind`: distinct for every (kind, n)."""
    fields = {"id": f"hostile-{kind}-{n}", "nombre": "Ana", "apellido": "Pérez", "pais": "Chile"}
    tail = '"apellido": "Pérez", "pais": "Chile"'
    match kind:
        case "bad_json":
            return f'{{"id": "hostile-{n}", "nombre": "Ana", '.encode()  # cut short
        case "nan":
            return f'{{"id": "hostile-{n}", "nombre": NaN, {tail}}}'.encode()
        case "deep_nesting":  # deeper than any recursion limit, under 64 KiB
            return (f'{{"id": "hostile-{n}", "x": ' + "[" * 50_000).encode()
        case "not_object":
            return json.dumps([fields, n]).encode()
        case "missing_field":
            return json.dumps({key: fields[key] for key in ("id", "nombre", "apellido")}).encode()
        case "null_field":
            return json.dumps({**fields, "apellido": None}).encode()
        case "wrong_type":
            wrong: list[object] = [12345, ["Ana"], True, {"first": "Ana"}, 1.5]
            return json.dumps({**fields, "nombre": wrong[n % len(wrong)]}).encode()
        case "huge_number":  # int() refuses over 4,300 digits: must not crash the reader
            digits = str(n).rjust(5_000, "9")
            return f'{{"id": {digits}, "nombre": "Ana", {tail}}}'.encode()
        case "oversize_field":
            return json.dumps({**fields, "nombre": "A" * (257 + n % 100)}).encode()
        case "control_chars":
            bad = ["\x00", "\x1b[31m", "\u202e", "\ufeff", "\u2028"][n % 5]
            return json.dumps({**fields, "nombre": f"An{bad}a"}).encode()
        case "duplicate_key":
            return f'{{"id": "hostile-{n}", "id": "other", "nombre": "Ana", {tail}}}'.encode()
        case "binary_junk":  # 0xFF is never UTF-8
            return b"\xff\xfe" + n.to_bytes(4, "big") + rng.randbytes(rng.randint(16, 512))
        case "too_large":
            return json.dumps({**fields, "nombre": "A" * (70_000 + n)}).encode()
    raise ValueError(f"no such hostile kind: {kind}")


def flood_messages(
    valid: list[bytes], *, every: int = HOSTILE_EVERY, seed: int = 0
) -> list[tuple[str | None, bytes]]:
    """`valid` with a hostile message after every `every - 1` of them (one in `every`),
    the kinds in turn: (kind, data), kind None for a valid message."""
    rng = random.Random(seed)  # junk, not a secret
    kinds = list(HOSTILE_KINDS)
    messages: list[tuple[str | None, bytes]] = []
    hostile = 0
    for index, payload in enumerate(valid, start=1):
        messages.append((None, payload))
        if index % (every - 1) == 0:
            kind = kinds[hostile % len(kinds)]
            messages.append((kind, hostile_payload(kind, hostile, rng)))
            hostile += 1
    return messages


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def drill(report: Report) -> Outcome:
    checks = Checks()
    figures: dict[str, float | int | str] = {}
    valid_count = MESSAGES - MESSAGES // HOSTILE_EVERY
    with Pipeline(name="poison-flood", env=EMULATOR_ENV) as pipeline:
        warm_up = pipeline.fake_payloads(WARM_UP, seed=500)
        clean = pipeline.fake_payloads(MESSAGES, seed=501)
        flood = flood_messages(pipeline.fake_payloads(valid_count, seed=502), seed=503)
        hostile = {digest(data): kind for kind, data in flood if kind is not None}
        pipeline.subscriber_start()

        def settled() -> tuple[float, float]:
            stored = pipeline.subscriber_metric("subscriber", "latam_ingest_messages_stored_total")
            dead = pipeline.subscriber_metric(
                "subscriber", "latam_ingest_messages_dead_lettered_total"
            )
            return stored, dead

        def run(label: str, payloads: list[bytes], stored: int, dead: int) -> float:
            """Publish, wait until `stored` + `dead` more are settled; msgs/s, sampled."""
            stored_before, dead_before = settled()
            timeline = Timeline()
            timeline.record(f"{label}_stored", 0)
            timeline.record(f"{label}_dead", 0)
            publisher = Publishing(  # sampled while it publishes
                pipeline,
                payloads,
                then=lambda at: timeline.event("publish", f"{label}: all published", at=at),
            )
            publisher.start()
            deadline = time.monotonic() + SETTLE_TIMEOUT_S
            while time.monotonic() < deadline:
                now_stored, now_dead = settled()
                timeline.record(f"{label}_stored", now_stored - stored_before)
                timeline.record(f"{label}_dead", now_dead - dead_before)
                if now_stored - stored_before >= stored and now_dead - dead_before >= dead:
                    break
                time.sleep(0.25)  # scrapes cost the subscriber CPU: not too often
            publisher.finish(max(deadline - time.monotonic(), 1))
            runs[label] = timeline
            got = timeline.last(f"{label}_stored") + timeline.last(f"{label}_dead")
            checks.check(
                got >= stored + dead,
                f"{label}: {got:,.0f} of {stored + dead:,} settled in {SETTLE_TIMEOUT_S} s",
            )
            expected = stored + dead
            points = zip(
                timeline.samples[f"{label}_stored"], timeline.samples[f"{label}_dead"], strict=True
            )
            bulk_at = next(
                (t for (t, kept), (_, dead_n) in points if kept + dead_n >= BULK * expected),
                timeline.now(),
            )
            all_at[label] = timeline.samples[f"{label}_stored"][-1][0]
            return BULK * expected / bulk_at

        runs: dict[str, Timeline] = {}
        all_at: dict[str, float] = {}  # seconds from the first publish to the last settled
        run("warm-up", warm_up, WARM_UP, 0)
        clean_rate = run("clean", clean, MESSAGES, 0)
        flood_rate = run("flood", [data for _, data in flood], valid_count, len(hostile))
        figures["clean_msgs_per_s"] = round(clean_rate)
        figures["flood_msgs_per_s"] = round(flood_rate)
        figures["flood_vs_clean"] = round(flood_rate / clean_rate, 2)
        figures["clean_all_settled_s"] = round(all_at["clean"], 1)
        figures["flood_all_settled_s"] = round(all_at["flood"], 1)
        checks.check(
            flood_rate >= MIN_THROUGHPUT_RATIO * clean_rate,
            f"the flood's throughput is {flood_rate / clean_rate:.0%} of the clean run's "
            f"(at least {MIN_THROUGHPUT_RATIO:.0%} expected)",
        )

        stored = pipeline.stored_count()
        figures["stored"] = stored
        expected_stored = WARM_UP + MESSAGES + valid_count
        checks.check(
            stored == expected_stored, f"{stored:,} of {expected_stored:,} valid records stored"
        )

        letters = {  # by message id: a letter pulled twice counts once
            item.message.message_id: item.message
            for item in pipeline.dead_letters(limit=len(hostile) * 2, wait=3)
        }
        figures["hostile"] = len(hostile)
        figures["dead_lettered"] = len(letters)
        matched: Counter[str] = Counter()
        wrong_code: Counter[str] = Counter()
        not_hostile = 0
        for message in letters.values():
            kind = hostile.get(digest(message.data))
            if kind is None:
                not_hostile += 1
            elif message.attributes.get("error_code") == HOSTILE_KINDS[kind]:
                matched[kind] += 1
            else:
                wrong_code[kind] += 1
        sent = Counter(hostile.values())
        figures["dead_lettered_with_reason"] = sum(matched.values())
        checks.check(not not_hostile, f"{not_hostile} dead letters are not hostile messages")
        checks.check(not wrong_code, f"dead-lettered with another error_code: {dict(wrong_code)}")
        missing = {kind: sent[kind] - matched[kind] for kind in sent if matched[kind] < sent[kind]}
        checks.check(not missing, f"hostile messages not dead-lettered: {missing}")
        print(
            "dead letters by kind (matched/sent, error_code): "
            + ", ".join(
                f"{kind} {matched[kind]}/{sent[kind]} {HOSTILE_KINDS[kind]}" for kind in sent
            ),
            flush=True,
        )

    plot = f"drill-{NAME}.png"
    combined = Timeline()
    for label in ("clean", "flood"):
        combined.samples.update(runs[label].samples)
        combined.events += [(t, kind, text) for t, kind, text in runs[label].events]
    timeline_plot(
        combined,
        report.path(plot),
        title=(
            f"Drill: poison flood, {MESSAGES:,} messages of which {len(hostile):,} hostile, "
            f"vs a clean run of {MESSAGES:,}"
        ),
        series={
            "clean_stored": f"clean run: stored ({clean_rate:,.0f} msgs/s settled, to 99 %)",
            "flood_stored": f"flood: stored ({flood_rate:,.0f} msgs/s settled, to 99 %)",
            "flood_dead": "flood: dead-lettered",
        },
        ylabel="messages settled (stored or dead-lettered)",
        xlabel="time since the run's first publish (s)",
    )
    return checks.outcome(NAME, figures, plot)
