"""Settings: one YAML file plus ``CHURN_``-prefixed environment overrides.

Validates only; building the pipeline from settings is ``app``'s job.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from monitor.errors import SettingsError

__all__ = [
    "EngineSettings",
    "KafkaSettings",
    "MetricsSettings",
    "Settings",
    "StoreSettings",
    "load_settings",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EngineSettings(_Section):
    """How the engine keeps time, counts churn and guards against outages."""

    allowed_lateness_s: Annotated[float, Field(ge=0, le=7 * 86_400)] = 7_200
    period: Literal["month", "week", "quarter"] = "month"
    churn_grace_days: Annotated[int, Field(ge=0, le=90)] = 7
    feedback_window_days: Annotated[int, Field(ge=1, le=730)] = 90
    max_event_bytes: Annotated[int, Field(ge=256, le=16 * 1024 * 1024)] = 65_536
    # Population-wide silence guard: a day whose active customers fall below
    # (1 - guard_drop) of the same weekday's usual level is taken as an outage.
    guard_drop: Annotated[float, Field(gt=0, lt=1)] = 0.6
    guard_min_customers: Annotated[int, Field(ge=1)] = 30


class KafkaSettings(_Section):
    """Where events come from and where warnings and dead letters go."""

    bootstrap_servers: str = "127.0.0.1:9092"
    group_id: str = "churn-monitor"
    client_id: str = "churn-monitor"
    # One topic for every event type, or a topic per type (both may be listed).
    topics: list[str] = ["churn.events"]
    releases_topic: str = "churn.releases"
    warnings_topic: str = "churn.warnings"
    dead_letter_topic: str = "churn.events.dlq"
    changelog_topic: str = "churn.state-changelog"
    # A task writes a snapshot of all its customers to the changelog once the
    # deltas since its last one outweigh it and this much, then deletes the
    # records before it.
    changelog_snapshot_min_bytes: Annotated[int, Field(ge=1)] = 8 * 1024 * 1024
    partitions: Annotated[int, Field(ge=1, le=1024)] = 4
    replication_factor: Annotated[int, Field(ge=1, le=7)] = 1
    instance_id: str | None = None
    commit_interval_s: Annotated[float, Field(gt=0, le=300)] = 0.5
    session_timeout_s: Annotated[float, Field(ge=6, le=300)] = 10.0
    transaction_timeout_s: Annotated[float, Field(ge=1, le=900)] = 10.0
    request_timeout_s: Annotated[float, Field(ge=1, le=300)] = 10.0
    restore_timeout_s: Annotated[float, Field(ge=1, le=3600)] = 120.0
    poll_timeout_s: Annotated[float, Field(gt=0, le=60)] = 0.5
    max_poll_records: Annotated[int, Field(ge=1, le=100_000)] = 2_000
    idle_advance_s: Annotated[float, Field(ge=0)] = 300.0
    # A commit, or an end-offsets probe sent after this long without input,
    # blocked this long marks the broker lost (not ready) until one succeeds.
    broker_lost_after_s: Annotated[float, Field(gt=0, le=300)] = 5.0
    # Security: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = (
        "PLAINTEXT"
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_check_hostname: bool = True


class StoreSettings(_Section):
    """The embedded checkpoint store (SQLite), one file per instance."""

    path: Path = Path("state/churn-monitor.db")


class MetricsSettings(_Section):
    """The Prometheus exporter and health endpoints."""

    enabled: bool = True
    address: str = "127.0.0.1:9108"
    tls_certfile: str | None = None
    tls_keyfile: str | None = None
    basic_auth_username: str | None = None
    basic_auth_password: str | None = None
    # Per-customer series exist only for open warnings, and never more than this.
    customer_series_cap: Annotated[int, Field(ge=0, le=1_000_000)] = 5_000
    # When set, customer ids in labels are replaced by a keyed hash.
    pseudonymise_key: str | None = None


class Settings(_Section):
    """Top-level settings."""

    rules_dir: Path = Path("rules")
    engine: EngineSettings = EngineSettings()
    kafka: KafkaSettings = KafkaSettings()
    store: StoreSettings = StoreSettings()
    metrics: MetricsSettings = MetricsSettings()


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """Turn ``CHURN_ENGINE__PERIOD=week`` into ``{"engine": {"period": "week"}}``."""
    tree: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith("CHURN_") or "__" not in key:
            continue
        path = key[len("CHURN_") :].lower().split("__")
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        # Lists and mappings come as YAML flow text: CHURN_KAFKA__TOPICS='[a, b]'.
        node[path[-1]] = yaml.safe_load(value) if value[:1] in "[{" else value
    return tree


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(
    path: Path | None = None, environ: dict[str, str] | None = None
) -> Settings:
    """Read settings from a YAML file (optional) and the environment."""
    data: dict[str, Any] = {}
    source = str(path) if path else "environment"
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise SettingsError(source, "(file)", str(exc)) from exc
        if not isinstance(loaded, dict):
            raise SettingsError(source, "(file)", "expected a mapping")
        data = loaded
    data = _merge(
        data, _env_overrides(dict(os.environ if environ is None else environ))
    )
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise SettingsError(source, field, first["msg"]) from exc
