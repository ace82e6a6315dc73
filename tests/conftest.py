"""Fixtures for every test: event factory and the default rule set."""

from __future__ import annotations

import pytest
from helpers import REPO, EventFactory, event

from monitor.engine.loader import RuleSet, load_rules


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to test a compiled module older than its source (an edit not rebuilt).

    ``pip install -e .`` compiles the hot path in place (see ``setup.py``), and
    Python imports the compiled file before the source beside it.
    """
    stale = [
        str(so.relative_to(REPO))
        for so in (REPO / "monitor").rglob("*.so")
        if (source := so.with_name(so.name.split(".")[0] + ".py")).exists()
        and source.stat().st_mtime > so.stat().st_mtime
    ]
    if stale:
        pytest.exit(
            f"compiled modules older than their source: {', '.join(stale)}; "
            "rebuild with `pip install -e .` or delete them to test plain Python",
            returncode=4,
        )


@pytest.fixture
def make_event() -> EventFactory:
    return event


@pytest.fixture(scope="session")
def default_rules() -> RuleSet:
    return load_rules(REPO / "rules")
