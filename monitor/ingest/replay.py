"""Read a history of events from a JSONL file or standard input, line by line.

Yields raw bytes only; decoding and judging are later stages.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from monitor.errors import SourceError

__all__ = ["read_lines"]


def read_lines(source: str | Path) -> Iterator[bytes]:
    """Yield each non-blank line of a JSONL file (``-`` for stdin), newline stripped."""
    if str(source) == "-":
        yield from _lines(sys.stdin.buffer)
        return
    path = Path(source)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise SourceError(f"{path}: cannot open events file: {exc.strerror}") from exc
    with handle:
        yield from _lines(handle)


def _lines(handle: object) -> Iterator[bytes]:
    for line in handle:  # type: ignore[attr-defined]
        stripped = line.rstrip(b"\r\n")
        if stripped.strip():
            yield stripped
