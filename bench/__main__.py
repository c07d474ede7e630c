"""The benchmark: `python -m bench [measure ...] [--database sqlite|postgres|both]
[--instances 1|2|both]`.

Every measure runs when none is named. Each starts its own sandbox, fake Bot API,
`paybot run` process and database, so one measure's leftovers never weigh on the
next. Ingest, webhook → chat and flood run on both stores by default, one after
the other in the same run, and are shown side by side; the others run on SQLite
unless `--database` says otherwise. It prints a Markdown table and writes every
raw figure to `bench-results.json` (or the file given with `--out`).

PostgreSQL: a fresh database for each measure on the server named by
`PAYBOT_BENCH_POSTGRES` (default postgresql://postgres@127.0.0.1:5432/postgres),
dropped afterwards. Without a server that answers, the PostgreSQL runs are skipped.

`--instances 2` runs `/invoice`, ingest, webhook → chat and flood on two `paybot
run` processes sharing one PostgreSQL database (two on SQLite are not a
deployment); `both` runs them on one instance as well, beside, in the same run.
The other measures run on one instance whatever it says, but for failover, which
kills one of two instances on PostgreSQL.
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
from typing import Any

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
from bench.report import Report, key, table

# name -> module with `async def measure(workdir: Path, database: Database) -> Report`,
# in the order they run.
MEASURES = {
    "invoice": "bench.invoice",
    "ingest": "bench.ingest",
    "latency": "bench.latency",
    "flood": "bench.flood",
    "polling": "bench.polling",
    "scale": "bench.scale",
    "failover": "bench.failover",
}
SIDE_BY_SIDE = ("ingest", "latency", "flood")  # on both stores unless --database says
SEVERAL = ("invoice", "ingest", "latency", "flood")  # measures --instances applies to
ONLY_SEVERAL = ("failover",)  # measures of two instances on PostgreSQL, whatever it says
Plan = dict[str, tuple[tuple[str, int], ...]]  # measure -> (store, instances), in order


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("measures", nargs="*", choices=[[], *MEASURES], metavar="measure")
    parser.add_argument("--database", choices=[*STORES, "both"], default=None)
    parser.add_argument("--instances", choices=["1", "2", "both"], default="1")
    parser.add_argument("--out", type=Path, default=Path("bench-results.json"))
    args = parser.parse_args(argv)
    plan = planned(args.measures or list(MEASURES), args.database, args.instances)
    reports = asyncio.run(run(plan))
    if not reports:
        print("nothing was measured", file=sys.stderr)
        return 2
    _compare(reports)
    print(table(reports))
    args.out.write_text(json.dumps(_document(reports), indent=2) + "\n")
    print(f"\nraw figures: {args.out}")
    return 0 if all(row.met for report in reports for row in report.rows) else 1


def planned(names: list[str], database: str | None, instances: str = "1") -> Plan:
    """Where each named measure runs, given `--database` (None: not given) and
    `--instances`: one instance on each store it names, then two on PostgreSQL."""
    plan: Plan = {}
    for name in names:
        if name in ONLY_SEVERAL:
            plan[name] = ((POSTGRES, 2),)
            continue
        stores: tuple[str, ...]
        if database == "both":
            stores = STORES
        elif database is not None:
            stores = (database,)
        else:
            stores = STORES if name in SIDE_BY_SIDE else (SQLITE,)
        several = name in SEVERAL and instances != "1"
        one = tuple((store, 1) for store in stores) if instances != "2" or not several else ()
        plan[name] = one + (((POSTGRES, 2),) if several else ())
    return plan


async def run(plan: Plan) -> list[Report]:
    plan = await _with_postgres_if_it_answers(plan)
    reports = []
    with tempfile.TemporaryDirectory(prefix="paybot-bench-") as scratch:
        for name, columns in plan.items():
            module = importlib.import_module(MEASURES[name])
            for store, instances in columns:
                reports.append(await _one(module, name, Path(scratch), store, instances))
    return reports


async def _one(module: Any, name: str, scratch: Path, store: str, instances: int) -> Report:
    started = time.monotonic()
    where = LABELS[store] + ("" if instances == 1 else f" × {instances} instances")
    print(f"{name} on {where}: running…", file=sys.stderr, flush=True)
    workdir = scratch / f"{name}-{store}-{instances}"
    async with provisioned(store, workdir) as database:
        if instances == 1:
            report: Report = await module.measure(workdir, database)
        else:
            report = await module.measure(workdir, database, instances)
    report.store, report.instances = store, instances
    print(f"{name} on {where}: done in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return report


async def _with_postgres_if_it_answers(plan: Plan) -> Plan:
    """The plan as it stands, or without PostgreSQL when no server answers; says which."""
    if not any(store == POSTGRES for columns in plan.values() for store, _ in columns):
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
    without = {
        name: tuple(c for c in columns if c[0] != POSTGRES) for name, columns in plan.items()
    }
    return {name: columns for name, columns in without.items() if columns}


def _compare(reports: list[Report]) -> None:
    """Figures across stores from this one run: PostgreSQL's ingest against SQLite's,
    a row and a figure of PostgreSQL's ingest report."""
    ingests = {r.store: r for r in reports if r.name == "ingest" and r.instances == 1}
    if set(ingests) == set(STORES):
        ingest.compare(ingests[SQLITE], ingests[POSTGRES])


def _document(reports: list[Report]) -> dict[str, object]:
    machine = {"python": platform.python_version(), "cpus": os.cpu_count()}
    measures: dict[str, dict[str, object]] = {}
    for r in reports:
        measures.setdefault(r.name, {})[key(r.column)] = _raw(r)
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine | {"system": platform.platform()},
        # measure -> store and instances ("sqlite", "postgres", "postgres-2") -> rows, figures
        "measures": measures,
    }


def _raw(report: Report) -> dict[str, object]:
    return {"rows": [asdict(row) for row in report.rows], "figures": report.figures}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
