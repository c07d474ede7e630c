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
    instances: int = 1  # `paybot run` processes on that store, set by the runner
    rows: list[Row] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)  # raw numbers, for the JSON file

    def add(self, measure: str, figure: str, target: str, met: bool) -> None:
        self.rows.append(Row(measure, figure, target, met))

    @property
    def column(self) -> Column:
        return (self.store, self.instances)


Column = tuple[str, int]  # (store, instances): one column of figures in the table


def label(column: Column) -> str:
    """How a column is headed and named: "PostgreSQL", "PostgreSQL, two instances"."""
    store, instances = column
    return LABELS[store] if instances == 1 else f"{LABELS[store]}, {instances} instances"


def key(column: Column) -> str:
    """How a column is named in the JSON file: "postgres", "postgres-2"."""
    store, instances = column
    return store if instances == 1 else f"{store}-{instances}"


def percentile(values: list[float], pct: float) -> float:
    """The `pct`th percentile (nearest rank) of a non-empty list."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median(values: list[float]) -> float:
    return statistics.median(values)


def table(reports: list[Report]) -> str:
    """A Markdown table, one column of figures per store and instance count, ready to
    paste into the README.

    A measure run on several is one line with the figures side by side; a column a
    measure did not run on shows "—".
    """
    present = {r.column for r in reports}
    columns = [(s, n) for n in (1, 2) for s in STORES if (s, n) in present]
    lines = [
        "| measure | " + " | ".join(label(c) for c in columns) + " | target | met |",
        "|---|" + "---|" * len(columns) + "---|---|",
    ]
    for by_column in _lines(reports).values():
        first = next(iter(by_column.values()))
        figures = " | ".join(by_column[c].figure if c in by_column else "—" for c in columns)
        lines.append(f"| {first.measure} | {figures} | {first.target} | {_met(by_column)} |")
    return "\n".join(lines)


def _lines(reports: list[Report]) -> dict[tuple[str, int], dict[Column, Row]]:
    """Each measure's n-th row, per column, in the order the measures ran."""
    grouped: dict[tuple[str, int], dict[Column, Row]] = {}
    for report in reports:
        for n, row in enumerate(report.rows):
            grouped.setdefault((report.name, n), {})[report.column] = row
    return grouped


def _met(by_column: dict[Column, Row]) -> str:
    verdicts = {column: "yes" if row.met else "**no**" for column, row in by_column.items()}
    if len(set(verdicts.values())) == 1:
        return next(iter(verdicts.values()))
    return ", ".join(f"{label(column)} {verdict}" for column, verdict in verdicts.items())
