"""The monitor's exception tree; bad events are data (``Rejected``), never these.

MonitorError
 +-- RuleFileError        a rule file that cannot be loaded (file, field, reason)
 +-- SettingsError        a settings file or override that does not validate
 +-- SourceError          an event source that cannot be read (file, broker)
 |    +-- BrokerUnavailableError
 +-- StateStoreError      the checkpoint store cannot be read or written
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "BrokerUnavailableError",
    "MonitorError",
    "RuleFileError",
    "SettingsError",
    "SourceError",
    "StateStoreError",
]


class MonitorError(Exception):
    """Root of every error the monitor raises on purpose."""


class RuleFileError(MonitorError):
    """A rule file was refused; says which file, which field and why."""

    def __init__(self, path: Path | str, field: str, reason: str) -> None:
        self.path = str(path)
        self.field = field
        self.reason = reason
        super().__init__(f"{self.path}: field '{field}': {reason}")


class SettingsError(MonitorError):
    """The settings file or an environment override does not validate."""

    def __init__(self, source: str, field: str, reason: str) -> None:
        self.source = source
        self.field = field
        self.reason = reason
        super().__init__(f"{source}: setting '{field}': {reason}")


class SourceError(MonitorError):
    """An event source could not be opened or read."""


class BrokerUnavailableError(SourceError):
    """The Kafka broker did not answer within the allowed time."""

    def __init__(self, bootstrap: str, reason: str) -> None:
        self.bootstrap = bootstrap
        self.reason = reason
        super().__init__(f"broker {bootstrap} unavailable: {reason}")


class StateStoreError(MonitorError):
    """The embedded state store failed to load or save a checkpoint."""
