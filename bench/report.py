"""What a measure reports: rows for the table, raw figures for the JSON file."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Row:
    measure: str
    figure: str  # as printed: "p50 4.1 ms, p99 9.8 ms"
    target: str  # as printed: "p99 ≤ 50 ms"
    met: bool


@dataclass
class Report:
    name: str  # the measure's name on the command line: "invoice"
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
    """A Markdown table of every row, ready to paste into the README."""
    lines = ["| measure | figure | target | met |", "|---|---|---|---|"]
    for report in reports:
        for row in report.rows:
            lines.append(f"| {row.measure} | {row.figure} | {row.target} | {_met(row.met)} |")
    return "\n".join(lines)


def _met(met: bool) -> str:
    return "yes" if met else "**no**"
