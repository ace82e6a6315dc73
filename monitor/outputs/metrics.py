"""The Prometheus exporter: pipeline counters the app feeds, churn figures, endpoints.

Counts and reports only; the app decides what happened. The per-event methods
(``record_consumed``, ``observe_latency``...) are for the thread that runs the
engines: they update plain numbers without locks, which is what keeps them cheap.
Past 300 lines: every pipeline metric of the contract, with its help text, is
defined here next to the call that feeds it.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from monitor.decode.events import RejectReason
from monitor.engine.core import Engine
from monitor.engine.lifecycle import ChurnWarning
from monitor.errors import SettingsError
from monitor.outputs.churn_collector import ChurnCollector, WarningSeries
from monitor.outputs.http import MetricsServer
from monitor.settings import MetricsSettings

__all__ = ["EVENT_TYPES", "LATENCY_BUCKETS", "MetricsExporter", "pseudonymise"]

logger = logging.getLogger(__name__)

EVENT_TYPES = ("usage", "feedback", "subscription", "release", "invalid")
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
)
# Labels take values from small fixed sets; a caller passing free text (a bad
# event type, say) is folded into "other" past this many values per metric.
_MAX_LABEL_VALUES = 32
_MIN_KEY_CHARS = 16
_PSEUDONYM_HEX_DIGITS = 16


def pseudonymise(customer_id: str, key: str) -> str:
    """Return the label standing for a customer id: a keyed hash, 16 hex digits.

    HMAC-SHA256 under the secret key; 64 bits keep collisions negligible for
    millions of customers. Whoever holds the key can recompute it from an id.
    """
    digest = hmac.new(key.encode(), customer_id.encode(), hashlib.sha256)
    return digest.hexdigest()[:_PSEUDONYM_HEX_DIGITS]


class MetricsExporter:
    """Own the registry, the pipeline counters and the HTTP endpoints.

    Args:
        settings: the ``metrics`` section.
        engines: returns the engines to report on; called at scrape time from the
            HTTP thread, so it must return a fresh sequence (``list(...)``).
        registry: where to register; a fresh one by default.
        lock: a lock the main loop holds while it works on the engines; a scrape
            takes it only while copying figures out (O(open warnings)).
        now: wall clock in epoch seconds, for ages and lags.

    Raises:
        SettingsError: an unusable pseudonymisation key, or endpoint settings that
            cannot work (address, half a TLS or basic-auth pair, certificate files).
    """

    def __init__(
        self,
        settings: MetricsSettings,
        engines: Callable[[], Sequence[Engine]],
        *,
        registry: CollectorRegistry | None = None,
        lock: AbstractContextManager[Any] | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.registry = registry if registry is not None else CollectorRegistry()
        self._now = now
        self._consumed: dict[str, int] = dict.fromkeys(EVENT_TYPES, 0)
        self._rejected: dict[str, int] = dict.fromkeys(map(str, RejectReason), 0)
        self._opened: dict[str, int] = {}
        self._resolved: dict[str, int] = {}
        self._lag: dict[tuple[str, str], int] = {}
        self._latency_bounds = LATENCY_BUCKETS
        self._latency_counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self._latency_sum = 0.0
        self._checkpoint_at: float | None = None
        self._rules = (0, 0)
        self._ready = (False, "starting")
        self._server = (
            MetricsServer(settings, self.registry, self.readiness)
            if settings.enabled
            else None
        )

        series = WarningSeries(settings.customer_series_cap, _labeller(settings))
        churn = ChurnCollector(engines, series, lock=lock, now=now)
        self.registry.register(churn)
        self.registry.register(self)

    # Endpoints

    def start(self) -> None:
        """Serve /metrics, /healthz and /readyz, unless metrics are disabled."""
        if self._server is None:
            logger.info("metrics endpoint disabled by settings")
        elif not self._server.is_running:
            self._server.start()

    def stop(self) -> None:
        """Stop serving; counters keep their values."""
        if self._server is not None:
            self._server.stop()

    @property
    def url(self) -> str | None:
        """Base URL of the running endpoint (scheme, host and bound port)."""
        server = self._server
        return server.url if server is not None and server.is_running else None

    @property
    def address(self) -> str | None:
        """host:port the endpoint listens on, with the real port when 0 was asked."""
        server = self._server
        return server.address if server is not None and server.is_running else None

    # Per-event calls: main-loop thread only

    def record_consumed(self, event_type: str, n: int = 1) -> None:
        """Count events read, by type (``invalid`` for one that does not decode)."""
        counts = self._consumed
        if event_type in counts:
            counts[event_type] += n
        else:
            _add_new_label(counts, event_type, n, "churn_events_consumed_total")

    def record_rejected(self, reason: str, n: int = 1) -> None:
        """Count events rejected, by reason (a ``RejectReason`` value)."""
        counts = self._rejected
        if reason in counts:
            counts[reason] += n
        else:
            _add_new_label(counts, reason, n, "churn_events_rejected_total")

    def observe_latency(self, seconds: float, n: int = 1) -> None:
        """Record ``n`` events' latency, from their arrival until they are processed.

        Once per poll batch, with the batch's latency and ``n=len(batch)``, is
        cheaper than once per event, and as true: each event waited for its batch.
        """
        self._latency_counts[bisect.bisect_left(self._latency_bounds, seconds)] += n
        self._latency_sum += seconds * n

    def record_warning(self, rule: str, status: str) -> None:
        """Count a warning ``opened`` or ``resolved`` under its rule."""
        counts = self._opened if status == "opened" else self._resolved
        counts[rule] = counts.get(rule, 0) + 1

    def on_warning_change(self, warning: ChurnWarning, status: str) -> None:
        """Count a warning change; fits ``WarningBook.on_change``."""
        self.record_warning(warning.rule, status)

    def attach(self, engine: Engine) -> None:
        """Count the engine's warning changes through its book's ``on_change``.

        For callers that do not pass the warning records to ``record_warning``
        themselves; doing both would count every change twice.
        """
        self._start_rules(rule.name for rule in engine.rules.rules)
        if self.on_warning_change not in engine.book.on_change:
            engine.book.on_change.append(self.on_warning_change)

    def detach(self, engine: Engine) -> None:
        """Stop counting an engine's changes (its partition was revoked)."""
        if self.on_warning_change in engine.book.on_change:
            engine.book.on_change.remove(self.on_warning_change)

    # State changes

    def set_consumer_lag(self, topic: str, partition: int, lag: int) -> None:
        """Set the messages between the committed and the end offset of a partition."""
        self._lag[topic, str(partition)] = lag

    def remove_partition(self, topic: str, partition: int) -> None:
        """Forget a partition's series once it is revoked from this instance."""
        self._lag.pop((topic, str(partition)), None)

    def mark_checkpoint(self, epoch_s: float) -> None:
        """Note when state was last saved (or restored); its age is exported."""
        self._checkpoint_at = epoch_s

    def set_rule_state(
        self, loaded: int, errors: int, names: Iterable[str] = ()
    ) -> None:
        """Set how many rules are loaded and how many rule files were refused.

        ``names`` start the rules' warning counters at zero, so that a rule's first
        warning shows in ``rate()`` rather than only creating the series.
        """
        self._rules = (loaded, errors)
        self._start_rules(names)

    def _start_rules(self, names: Iterable[str]) -> None:
        for name in names:
            self._opened.setdefault(name, 0)
            self._resolved.setdefault(name, 0)

    def set_ready(self, ready: bool, reason: str = "") -> None:
        """Set readiness; ``reason`` says what is missing and goes to /readyz."""
        state = (ready, "" if ready else reason or "not ready")
        if state != self._ready:
            logger.info("readiness changed: ready=%s reason=%s", ready, state[1])
        self._ready = state

    def readiness(self) -> tuple[bool, str]:
        """Return whether the monitor is ready and, if not, why."""
        return self._ready

    # Collector protocol, called from the scrape thread

    def describe(self) -> Iterator[Metric]:
        return self.collect()

    def collect(self) -> Iterator[Metric]:
        """Yield the pipeline families.

        The values are written by the main loop only and read here; a dict is
        copied in one step under the interpreter lock, so a scrape never sees one
        change size while it iterates.
        """
        yield _counter(
            "churn_events_consumed",
            "Events read from the input, by event type",
            "type",
            self._consumed,
        )
        yield _counter(
            "churn_events_rejected",
            "Events rejected, by reason",
            "reason",
            self._rejected,
        )
        yield _counter(
            "churn_warnings_opened", "Warnings opened, by rule", "rule", self._opened
        )
        yield _counter(
            "churn_warnings_resolved",
            "Warnings resolved, by rule",
            "rule",
            self._resolved,
        )
        yield self._lag_family()
        yield self._latency_family()
        yield from self._state_families()

    def _lag_family(self) -> Metric:
        family = GaugeMetricFamily(
            "churn_consumer_lag_messages",
            "Messages between the committed offset and the end of a partition",
            labels=["topic", "partition"],
        )
        for (topic, partition), lag in sorted(self._lag.copy().items()):
            family.add_metric([topic, partition], lag)
        return family

    def _latency_family(self) -> Metric:
        counts = list(self._latency_counts)
        buckets = []
        cumulative = 0
        for bound, count in zip(self._latency_bounds, counts, strict=False):
            cumulative += count
            buckets.append((repr(float(bound)), cumulative))
        buckets.append(("+Inf", cumulative + counts[-1]))
        return HistogramMetricFamily(
            "churn_processing_latency_seconds",
            "Time from an event's arrival until the monitor has processed it",
            buckets=buckets,
            sum_value=self._latency_sum,
            unit="seconds",
        )

    def _state_families(self) -> Iterator[Metric]:
        age = GaugeMetricFamily(
            "churn_checkpoint_age_seconds",
            "Seconds since state was last checkpointed or restored",
            unit="seconds",
        )
        if self._checkpoint_at is not None:
            age.add_metric([], max(0.0, self._now() - self._checkpoint_at))
        yield age

        loaded, errors = self._rules
        yield GaugeMetricFamily(
            "churn_rules_loaded", "Rules loaded and enabled", value=loaded
        )
        yield GaugeMetricFamily(
            "churn_rule_file_errors",
            "Rule files refused at the last load",
            value=errors,
        )
        yield GaugeMetricFamily(
            "churn_ready",
            "1 when the broker answers, state is restored and rules are loaded",
            value=1 if self._ready[0] else 0,
        )


def _counter(name: str, help_text: str, label: str, counts: dict[str, int]) -> Metric:
    family = CounterMetricFamily(name, help_text, labels=[label])
    for value, count in sorted(counts.copy().items()):
        family.add_metric([value], count)
    return family


def _add_new_label(counts: dict[str, int], value: str, n: int, metric: str) -> None:
    if len(counts) >= _MAX_LABEL_VALUES:
        if "other" not in counts:
            logger.warning(
                "too many label values, folding into 'other': metric=%s value=%r",
                metric,
                value[:64],
            )
        value = "other"
    counts[value] = counts.get(value, 0) + n


def _labeller(settings: MetricsSettings) -> Callable[[str], str]:
    """Return the function that turns a customer id into its label value."""
    key = settings.pseudonymise_key
    if key is None:
        return str
    if len(key) < _MIN_KEY_CHARS:
        raise SettingsError(
            "settings",
            "metrics.pseudonymise_key",
            f"expected a secret of at least {_MIN_KEY_CHARS} characters, "
            f"got {len(key)}",
        )
    cache_size = max(1_024, 2 * settings.customer_series_cap)
    return functools.lru_cache(maxsize=cache_size)(
        functools.partial(pseudonymise, key=key)
    )
