"""Load the rule files of a folder into a validated, ordered ``RuleSet``.

Refuses a bad file with its path, the field and the reason; never half-loads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from monitor.engine.detectors.params import series_key
from monitor.engine.schema import Rule, UsageMatch
from monitor.errors import RuleFileError

__all__ = ["RuleSet", "check_rules", "load_rule_file", "load_rules"]

logger = logging.getLogger(__name__)

_RULE = TypeAdapter(Rule)
_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The enabled rules, sorted by name, and the usage series they need."""

    rules: tuple[Rule, ...]
    source: str

    @property
    def series(self) -> tuple[tuple[str, UsageMatch, bool], ...]:
        """Return ``(key, filter, counts_events)`` for each daily series to keep.

        Events over all usage are always kept as ``CustomerState.usage``.
        """
        found: dict[str, tuple[str, UsageMatch, bool]] = {}
        for rule in self.rules:
            measure = getattr(rule, "measure", None)
            for match in (getattr(rule, "match", None), getattr(rule, "per", None)):
                if not isinstance(match, UsageMatch) or measure is None:
                    continue
                key = series_key(match, measure)
                if key is None:
                    continue
                found.setdefault(key, (key, match, measure == "events"))
        return tuple(found[key] for key in sorted(found))

    @property
    def history_days(self) -> int:
        """Return the longest window, in days, that any rule looks back over."""
        longest = 7
        for rule in self.rules:
            for field in ("recent_days", "baseline_days", "window_days", "days"):
                longest = max(longest, int(getattr(rule, field, 0) or 0))
            if rule.kind == "declining_usage":
                longest = max(
                    longest, rule.recent_days + rule.gap_days + rule.baseline_days
                )
        return longest


def _field_of(error: dict[str, Any]) -> str:
    # The first path element of a union error is the discriminator's tag.
    loc = [str(part) for part in error.get("loc", ())]
    if len(loc) > 1 and error.get("type") != "union_tag_invalid":
        loc = loc[1:]
    return ".".join(loc) or "kind"


def load_rule_file(path: Path) -> Rule:
    """Parse and validate one rule file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleFileError(path, "(file)", f"cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise RuleFileError(path, "(file)", f"not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise RuleFileError(path, "(file)", "expected a mapping of rule fields")

    data.setdefault("name", path.stem.replace("-", "_"))
    try:
        return _RULE.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = _field_of(dict(first))
        reason = first["msg"]
        if "input" in first and first["type"] not in ("missing", "union_tag_invalid"):
            reason = f"{reason}, got {first['input']!r}"
        raise RuleFileError(path, field, reason) from exc


def _files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise RuleFileError(folder, "(folder)", "not a folder of rule files")
    return sorted(p for p in folder.iterdir() if p.suffix in _SUFFIXES)


def check_rules(folder: Path) -> tuple[list[Rule], list[RuleFileError]]:
    """Validate every file of a folder; return the good rules and every error."""
    rules: list[Rule] = []
    errors: list[RuleFileError] = []
    seen: dict[str, Path] = {}
    for path in _files(folder):
        try:
            rule = load_rule_file(path)
        except RuleFileError as exc:
            errors.append(exc)
            continue
        if rule.name in seen:
            errors.append(
                RuleFileError(
                    path, "name", f"{rule.name!r} already in {seen[rule.name]}"
                )
            )
            continue
        seen[rule.name] = path
        rules.append(rule)

    return rules, errors


def load_rules(folder: Path) -> RuleSet:
    """Load a folder of rules, refusing all of them if any file is bad."""
    rules, errors = check_rules(folder)
    if errors:
        raise errors[0]
    if not rules:
        raise RuleFileError(folder, "(folder)", "no rule files (*.yaml) found")
    enabled = tuple(sorted((r for r in rules if r.enabled), key=lambda r: r.name))
    logger.info("rules loaded: folder=%s rules=%d", folder, len(enabled))
    return RuleSet(rules=enabled, source=str(folder))
