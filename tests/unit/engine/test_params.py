"""The compiled copies of the rules hold what the validated rule files say."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.engine.detectors import RuleParams, params_for
from monitor.engine.detectors.params import ThresholdParams, series_key
from monitor.engine.loader import RuleSet
from monitor.engine.schema import RuleFile, UsageMatch

COMMON = {"name": "r", "action": "Call them.", "severity": "critical", "weight": 7}
KINDS: list[dict[str, Any]] = [
    {"kind": "inactivity", "days": 9},
    {"kind": "ignored_feature", "mode": "abandoned", "silence_factor": 2},
    {"kind": "declining_usage", "drop": 0.6, "min_z": 2},
    {"kind": "negative_feedback", "channel": "nps", "max_score": 6},
    {"kind": "vanishing_feedback", "channels": ["nps", "survey"]},
    {"kind": "billing_risk", "trigger": "downgraded", "grace_days": 2},
    {
        "kind": "threshold",
        "metric": "ratio",
        "per": {"action": "like"},
        "op": ">",
        "value": 2,
    },
]


def _assert_copies(params: RuleParams, rule: Any) -> None:
    copied = [name for name in type(rule).model_fields if hasattr(params, name)]
    # Every field but the descriptive ones (and launches, read at start) is copied.
    assert set(type(rule).model_fields) - set(copied) <= {
        "description",
        "enabled",
        "launches",
    }
    for name in copied:
        value = getattr(rule, name)
        assert getattr(params, name) == (list(value) if name == "channels" else value)
    assert params.rule is rule


@pytest.mark.parametrize("body", KINDS, ids=[k["kind"] for k in KINDS])
def test_params_copy_every_field_of_each_kind(body: dict[str, Any]) -> None:
    rule = RuleFile.model_validate({"rule": {**COMMON, **body}}).rule

    _assert_copies(params_for(rule), rule)


def test_params_of_the_default_rules(default_rules: RuleSet) -> None:
    codes = set()
    for rule in default_rules.rules:
        params = params_for(rule)
        _assert_copies(params, rule)
        codes.add((rule.kind, params.code))
    # One code per kind.
    assert len(codes) == len({kind for kind, _ in codes})


def test_params_refuse_an_unknown_rule() -> None:
    with pytest.raises(TypeError, match="no detector"):
        params_for(object())


@pytest.mark.parametrize(
    ("match", "measure", "key"),
    [
        ({}, "events", None),  # all usage events: CustomerState.usage
        ({}, "count", "count|a=*|f=*"),
        ({"feature": "search"}, "events", "events|a=*|f=search"),
        ({"action": "like"}, "count", "count|a=like|f=*"),
    ],
)
def test_series_key_names_the_series_a_filter_reads(
    match: dict[str, str], measure: str, key: str | None
) -> None:
    assert series_key(UsageMatch(**match), measure) == key


def test_threshold_params_name_both_series() -> None:
    rule = RuleFile.model_validate({"rule": {**COMMON, **KINDS[-1]}}).rule
    params = params_for(rule)

    assert isinstance(params, ThresholdParams)
    # A threshold sums the count field unless told otherwise.
    assert (params.series, params.per_series) == ("count|a=*|f=*", "count|a=like|f=*")
