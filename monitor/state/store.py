"""The embedded checkpoint store: SQLite, one file per instance, no server.

Holds, per task (input topic and partition), the blobs of its customers and of its
engine with the input offset they reflect, written in one transaction. Knows
nothing of what the blobs mean.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from monitor.errors import StateStoreError

__all__ = ["Checkpoint", "StateStore"]

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    task TEXT PRIMARY KEY,
    next_offset INTEGER NOT NULL,
    engine BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS customers (
    task TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    blob BLOB NOT NULL,
    PRIMARY KEY (task, customer_id)
);
"""


@dataclass(slots=True)
class Checkpoint:
    """A task's state as of ``next_offset``: the first input offset not in it."""

    next_offset: int
    engine: bytes
    customers: dict[str, bytes]


class StateStore:
    """Save and load checkpoints atomically; survives kill -9 (SQLite WAL)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # One thread uses the store at a time, but not always the one that
            # opened it (the monitor may be built on one thread and run on another).
            self._db = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL survives a killed process; only power loss may lose the
            # last commit, which Kafka's changelog then restores.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StateStoreError(f"{path}: cannot open state store: {exc}") from exc

    def load(self, task: str) -> Checkpoint | None:
        """Return a task's last checkpoint, or None if it has none here."""
        try:
            row = self._db.execute(
                "SELECT next_offset, engine FROM tasks WHERE task = ?", (task,)
            ).fetchone()
            if row is None:
                return None
            customers = dict(
                self._db.execute(
                    "SELECT customer_id, blob FROM customers WHERE task = ?", (task,)
                ).fetchall()
            )
        except sqlite3.Error as exc:
            raise StateStoreError(f"{self.path}: cannot load {task}: {exc}") from exc
        return Checkpoint(int(row[0]), bytes(row[1]), customers)

    def save(
        self,
        task: str,
        next_offset: int,
        engine: bytes,
        customers: dict[str, bytes | None],
    ) -> None:
        """Write changed customers (None deletes) and the engine, atomically."""
        try:
            with self._transaction():
                self._db.executemany(
                    "INSERT OR REPLACE INTO customers VALUES (?, ?, ?)",
                    [(task, c, b) for c, b in customers.items() if b is not None],
                )
                self._db.executemany(
                    "DELETE FROM customers WHERE task = ? AND customer_id = ?",
                    [(task, c) for c, b in customers.items() if b is None],
                )
                self._db.execute(
                    "INSERT OR REPLACE INTO tasks VALUES (?, ?, ?)",
                    (task, next_offset, engine),
                )
        except sqlite3.Error as exc:
            raise StateStoreError(f"{self.path}: cannot save {task}: {exc}") from exc

    def replace(self, task: str, checkpoint: Checkpoint) -> None:
        """Overwrite a task with a checkpoint restored from elsewhere."""
        try:
            with self._transaction():
                self._db.execute("DELETE FROM customers WHERE task = ?", (task,))
                self._db.executemany(
                    "INSERT INTO customers VALUES (?, ?, ?)",
                    [(task, c, b) for c, b in checkpoint.customers.items()],
                )
                self._db.execute(
                    "INSERT OR REPLACE INTO tasks VALUES (?, ?, ?)",
                    (task, checkpoint.next_offset, checkpoint.engine),
                )
        except sqlite3.Error as exc:
            raise StateStoreError(f"{self.path}: cannot replace {task}: {exc}") from exc

    def tasks(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT task FROM tasks ORDER BY task")]

    def close(self) -> None:
        self._db.close()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")
