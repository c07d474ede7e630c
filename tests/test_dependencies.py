"""Every runtime dependency is bounded below its next major version, and what is
installed is inside the bounds: a plain install takes no breaking release."""

from __future__ import annotations

import tomllib
from importlib.metadata import version

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from tests.process import ROOT

DEPENDENCIES = [
    Requirement(text)
    for text in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
]


def next_major(release: Version) -> Version:
    """0.x counts as a major of its own until 1.0, as these projects version."""
    return Version(str(release.major + 1))


@pytest.mark.parametrize("requirement", DEPENDENCIES, ids=lambda r: r.name)
def test_a_runtime_dependency_stops_before_the_next_major(requirement: Requirement) -> None:
    uppers = [spec for spec in requirement.specifier if spec.operator == "<"]
    assert len(uppers) == 1, f"{requirement}: no upper bound"
    installed = Version(version(requirement.name))
    assert installed in requirement.specifier, f"{requirement} refuses {installed}"
    assert Version(uppers[0].version) == next_major(installed), requirement


def test_the_readme_says_how_to_install_locked() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "--generate-hashes" in readme
    assert "--require-hashes -r requirements.lock" in readme
