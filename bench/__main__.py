"""The benchmark: `python -m bench [measure ...] [--database sqlite|postgres|both]`.

Every measure runs when none is named. Each starts its own sandbox, fake Bot API,
`paybot run` process and database, so one measure's leftovers never weigh on the
next. Ingest, webhook → chat and flood run on both stores by default, one after
the other in the same run, and are shown side by side; the others run on SQLite
unless `--database` says otherwise. It prints a Markdown table and writes every
raw figure to `bench-results.json` (or the file given with `--out`).

PostgreSQL: a fresh database for each measure on the server named by
`PAYBOT_BENCH_POSTGRES` (default postgresql://postgres@127.0.0.1:5432/postgres),
dropped afterwards. Without a server that answers, the PostgreSQL runs are skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from bench import ingest
from bench.databases import (
    LABELS,
    POSTGRES,
    SQLITE,
    STORES,
    provisioned,
    server_url,
    shown,
    unreachable,
)
from bench.report import Report, table

# name -> module with `async def measure(workdir: Path, database: Database) -> Report`,
# in the order they run.
MEASURES = {
    "invoice": "bench.invoice",
    "ingest": "bench.ingest",
    "latency": "bench.latency",
    "flood": "bench.flood",
    "polling": "bench.polling",
    "scale": "bench.scale",
}
SIDE_BY_SIDE = ("ingest", "latency", "flood")  # on both stores unless --database says
Plan = dict[str, tuple[str, ...]]  # measure -> the stores it runs on, in order


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("measures", nargs="*", choices=[[], *MEASURES], metavar="measure")
    parser.add_argument("--database", choices=[*STORES, "both"], default=None)
    parser.add_argument("--out", type=Path, default=Path("bench-results.json"))
    args = parser.parse_args(argv)
    plan = planned(args.measures or list(MEASURES), args.database)
    reports = asyncio.run(run(plan))
    if not reports:
        print("nothing was measured", file=sys.stderr)
        return 2
    _compare(reports)
    print(table(reports))
    args.out.write_text(json.dumps(_document(reports), indent=2) + "\n")
    print(f"\nraw figures: {args.out}")
    return 0 if all(row.met for report in reports for row in report.rows) else 1


def planned(names: list[str], database: str | None) -> Plan:
    """Which stores each named measure runs on, given `--database` (None: not given)."""
    if database == "both":
        return {name: STORES for name in names}
    if database is not None:
        return {name: (database,) for name in names}
    return {name: STORES if name in SIDE_BY_SIDE else (SQLITE,) for name in names}


async def run(plan: Plan) -> list[Report]:
    plan = await _with_postgres_if_it_answers(plan)
    reports = []
    with tempfile.TemporaryDirectory(prefix="paybot-bench-") as scratch:
        for name, stores in plan.items():
            module = importlib.import_module(MEASURES[name])
            for store in stores:
                started = time.monotonic()
                print(f"{name} on {LABELS[store]}: running…", file=sys.stderr, flush=True)
                workdir = Path(scratch) / f"{name}-{store}"
                async with provisioned(store, workdir) as database:
                    report = await module.measure(workdir, database)
                report.store = store
                took = time.monotonic() - started
                print(f"{name} on {LABELS[store]}: done in {took:.0f} s", file=sys.stderr)
                reports.append(report)
    return reports


async def _with_postgres_if_it_answers(plan: Plan) -> Plan:
    """The plan as it stands, or without PostgreSQL when no server answers; says which."""
    if not any(POSTGRES in stores for stores in plan.values()):
        return plan
    server = shown(server_url())
    reason = await unreachable(server_url())
    if reason is None:
        print(
            f"PostgreSQL: each measure on a fresh database on {server} "
            "(PAYBOT_BENCH_POSTGRES), dropped after",
            file=sys.stderr,
        )
        return plan
    print(f"PostgreSQL: skipped, no server answers at {server} ({reason})", file=sys.stderr)
    without = {name: tuple(s for s in stores if s != POSTGRES) for name, stores in plan.items()}
    return {name: stores for name, stores in without.items() if stores}


def _compare(reports: list[Report]) -> None:
    """Figures across stores from this one run: PostgreSQL's ingest against SQLite's,
    a row and a figure of PostgreSQL's ingest report."""
    ingests = {r.store: r for r in reports if r.name == "ingest"}
    if set(ingests) == set(STORES):
        ingest.compare(ingests[SQLITE], ingests[POSTGRES])


def _document(reports: list[Report]) -> dict[str, object]:
    machine = {"python": platform.python_version(), "cpus": os.cpu_count()}
    measures: dict[str, dict[str, object]] = {}
    for r in reports:
        measures.setdefault(r.name, {})[r.store] = _raw(r)
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine | {"system": platform.platform()},
        "measures": measures,  # measure -> store ("sqlite", "postgres") -> rows and figures
    }


def _raw(report: Report) -> dict[str, object]:
    return {"rows": [asdict(row) for row in report.rows], "figures": report.figures}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
