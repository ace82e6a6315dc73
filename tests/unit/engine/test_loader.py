"""Rule files: the defaults load; a bad file is refused with file, field, reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import REPO

from monitor.cli import main
from monitor.engine.loader import check_rules, load_rules
from monitor.errors import RuleFileError

GOOD = "kind: inactivity\ndays: 14\naction: Call them\n"


def test_default_rules_cover_every_kind() -> None:
    rules = load_rules(REPO / "rules")

    assert {r.kind for r in rules.rules} >= {
        "declining_usage",
        "ignored_feature",
        "vanishing_feedback",
        "inactivity",
        "negative_feedback",
        "billing_risk",
    }
    assert all(r.action for r in rules.rules)


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        (
            "kind: nonsense\naction: x\n",
            "kind",
            "does not match any of the expected tags",
        ),
        (
            "kind: inactivity\ndays: -3\naction: x\n",
            "days",
            "greater than or equal to 1",
        ),
        (
            "kind: inactivity\ndayz: 3\naction: x\n",
            "dayz",
            "Extra inputs are not permitted",
        ),
        ("kind: inactivity\n", "action", "Field required"),
        (
            "kind: declining_usage\nrecent_days: 10\naction: x\n",
            "declining_usage",
            "whole weeks",
        ),
        (
            "kind: threshold\nmetric: ratio\nop: '>'\nvalue: 1\naction: x\n",
            "threshold",
            "needs 'per'",
        ),
        (
            "kind: inactivity\nseverity: loud\naction: x\n",
            "severity",
            "'info', 'warning'",
        ),
        ("- just\n- a list\n", "(file)", "expected a mapping"),
        ("kind: [unclosed\n", "(file)", "not valid YAML"),
    ],
)
def test_bad_rule_file_refused_with_file_field_reason(
    tmp_path: Path, text: str, field: str, reason: str
) -> None:
    path = tmp_path / "bad_rule.yaml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(RuleFileError, match=reason) as caught:
        load_rules(tmp_path)

    assert caught.value.path == str(path)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{path}: field '{field}': ")


def test_duplicate_rule_names_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("name: same\n" + GOOD, encoding="utf-8")
    (tmp_path / "b.yaml").write_text("name: same\n" + GOOD, encoding="utf-8")

    rules, errors = check_rules(tmp_path)

    assert len(rules) == 1
    assert errors[0].field == "name"


def test_rules_check_reports_every_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "good.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "bad1.yaml").write_text(
        "kind: inactivity\naction: x\ndays: 0\n", encoding="utf-8"
    )
    (tmp_path / "bad2.yaml").write_text("kind: what\n", encoding="utf-8")

    code = main(["rules", "check", str(tmp_path)])

    err = capsys.readouterr().err
    assert code == 1
    assert "bad1.yaml: field 'days'" in err
    assert "bad2.yaml: field 'kind'" in err


def test_rules_check_default_folder_succeeds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["rules", "check", str(REPO / "rules")])

    assert code == 0
    assert capsys.readouterr().out.startswith("SUCCESS")
