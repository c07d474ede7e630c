"""What a measure reports: rows for the table, raw figures for the JSON file."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from bench.databases import LABELS, SQLITE, STORES


@dataclass(frozen=True)
class Row:
    measure: str
    figure: str  # as printed: "p50 4.1 ms, p99 9.8 ms"
    target: str  # as printed: "p99 ≤ 50 ms"
    met: bool


@dataclass
class Report:
    name: str  # the measure's name on the command line: "invoice"
    store: str = SQLITE  # the store the bot ran on, set by the runner
    rows: list[Row] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)  # raw numbers, for the JSON file

    def add(self, measure: str, figure: str, target: str, met: bool) -> None:
        self.rows.append(Row(measure, figure, target, met))


def percentile(values: list[float], pct: float) -> float:
    """The `pct`th percentile (nearest rank) of a non-empty list."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median(values: list[float]) -> float:
    return statistics.median(values)


def table(reports: list[Report]) -> str:
    """A Markdown table, one column of figures per store, ready to paste into the README.

    A measure run on both stores is one line with both figures side by side; a
    store a measure did not run on shows "—".
    """
    stores = [store for store in STORES if any(r.store == store for r in reports)]
    lines = [
        "| measure | " + " | ".join(LABELS[store] for store in stores) + " | target | met |",
        "|---|" + "---|" * len(stores) + "---|---|",
    ]
    for by_store in _lines(reports).values():
        first = next(iter(by_store.values()))
        figures = " | ".join(by_store[s].figure if s in by_store else "—" for s in stores)
        lines.append(f"| {first.measure} | {figures} | {first.target} | {_met(by_store)} |")
    return "\n".join(lines)


def _lines(reports: list[Report]) -> dict[tuple[str, int], dict[str, Row]]:
    """Each measure's n-th row, per store, in the order the measures ran."""
    grouped: dict[tuple[str, int], dict[str, Row]] = {}
    for report in reports:
        for n, row in enumerate(report.rows):
            grouped.setdefault((report.name, n), {})[report.store] = row
    return grouped


def _met(by_store: dict[str, Row]) -> str:
    verdicts = {store: "yes" if row.met else "**no**" for store, row in by_store.items()}
    if len(set(verdicts.values())) == 1:
        return next(iter(verdicts.values()))
    return ", ".join(f"{LABELS[store]} {verdict}" for store, verdict in verdicts.items())
