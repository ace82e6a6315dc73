"""Write a registry in the Prometheus text format (version 0.0.4), quickly.

prometheus_client's own writer validates every label name of every sample, which
makes it the bulk of a scrape with thousands of per-customer series; the monitor's
label names are fixed and known valid, so only values are escaped here. Samples
that exist only in OpenMetrics (``_created``, ``_gsum``, ``_gcount``) are left out.
"""

from __future__ import annotations

import math

from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "encode_text"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# OpenMetrics family types as the text format names them.
_TEXT_TYPES = {
    "counter": "counter",
    "gauge": "gauge",
    "histogram": "histogram",
    "summary": "summary",
    "gaugehistogram": "histogram",
    "info": "gauge",
    "stateset": "gauge",
    "unknown": "untyped",
}
_OPENMETRICS_ONLY = ("_created", "_gsum", "_gcount")


def encode_text(registry: Collector) -> bytes:
    """Collect the registry and return its exposition as UTF-8 text."""
    out: list[str] = []
    for family in registry.collect():
        name = family.name
        if family.type == "counter":
            name += "_total"
        elif family.type == "info":
            name += "_info"
        help_text = family.documentation.replace("\\", "\\\\").replace("\n", "\\n")
        out.append(f"# HELP {name} {help_text}\n")
        out.append(f"# TYPE {name} {_TEXT_TYPES.get(family.type, 'untyped')}\n")

        skipped = tuple(family.name + suffix for suffix in _OPENMETRICS_ONLY)
        for sample in family.samples:
            if sample.name in skipped:
                continue
            out.append(_sample_line(sample.name, sample.labels, sample.value))
            if sample.timestamp is not None:
                out[-1] = f"{out[-1][:-1]} {int(float(sample.timestamp) * 1000)}\n"

    return "".join(out).encode()


def _sample_line(name: str, labels: dict[str, str], value: float) -> str:
    if not labels:
        return f"{name} {_number(value)}\n"
    pairs = ",".join(f'{key}="{_escape(text)}"' for key, text in labels.items())
    return f"{name}{{{pairs}}} {_number(value)}\n"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isfinite(value):
        return repr(float(value))
    if math.isnan(value):
        return "NaN"
    return "+Inf" if value > 0 else "-Inf"
