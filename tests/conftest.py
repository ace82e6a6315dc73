"""Fixtures for every test: event factory and the default rule set."""

from __future__ import annotations

import pytest
from helpers import REPO, EventFactory, event

from monitor.engine.loader import RuleSet, load_rules


@pytest.fixture
def make_event() -> EventFactory:
    return event


@pytest.fixture(scope="session")
def default_rules() -> RuleSet:
    return load_rules(REPO / "rules")
