"""The benchmark: `python -m bench [measure ...]`; every measure when none is named.

Each measure starts its own sandbox, fake Bot API and `paybot run` process, so one
measure's leftovers never weigh on the next. It prints a Markdown table and writes
every raw figure to `bench-results.json` (or the file given with `--out`).
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

from bench.report import Report, table

# name -> module with `async def measure(workdir: Path) -> Report`, in the order they run.
MEASURES = {
    "invoice": "bench.invoice",
    "ingest": "bench.ingest",
    "latency": "bench.latency",
    "flood": "bench.flood",
    "polling": "bench.polling",
    "scale": "bench.scale",
}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("measures", nargs="*", choices=[[], *MEASURES], metavar="measure")
    parser.add_argument("--out", type=Path, default=Path("bench-results.json"))
    args = parser.parse_args(argv)
    names = args.measures or list(MEASURES)
    reports = asyncio.run(run(names))
    print(table(reports))
    args.out.write_text(json.dumps(_document(reports), indent=2) + "\n")
    print(f"\nraw figures: {args.out}")
    return 0 if all(row.met for report in reports for row in report.rows) else 1


async def run(names: list[str]) -> list[Report]:
    reports = []
    with tempfile.TemporaryDirectory(prefix="paybot-bench-") as scratch:
        for name in names:
            module = importlib.import_module(MEASURES[name])
            started = time.monotonic()
            print(f"{name}: running…", file=sys.stderr, flush=True)
            report = await module.measure(Path(scratch) / name)
            print(f"{name}: done in {time.monotonic() - started:.0f} s", file=sys.stderr)
            reports.append(report)
    return reports


def _document(reports: list[Report]) -> dict[str, object]:
    machine = {"python": platform.python_version(), "cpus": os.cpu_count()}
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine | {"system": platform.platform()},
        "measures": {
            r.name: {"rows": [asdict(row) for row in r.rows], "figures": r.figures} for r in reports
        },
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
