"""The embedded checkpoint store: SQLite, one file per instance, no server.

A local copy of each task's changelog: per task (input topic and partition), the
records of changed customers as written to Kafka (``changelog.pack``) since the
last snapshot, and the engine blob with the input offset they reflect, each
commit in one transaction. A few rows per commit, however many customers changed.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from monitor.errors import StateStoreError
from monitor.state.changelog import Checkpoint, merge, pack

__all__ = ["Checkpoint", "StateStore"]

logger = logging.getLogger(__name__)

_VERSION = 2
_SCHEMA = """
DROP TABLE IF EXISTS customers;
DROP TABLE IF EXISTS tasks;
DROP TABLE IF EXISTS parts;
CREATE TABLE tasks (
    task TEXT PRIMARY KEY,
    next_offset INTEGER NOT NULL,
    engine BLOB NOT NULL
);
CREATE TABLE parts (
    id INTEGER PRIMARY KEY,
    task TEXT NOT NULL,
    blob BLOB NOT NULL
);
CREATE INDEX parts_by_task ON parts (task, id);
PRAGMA user_version = 2;
"""


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
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version != _VERSION:
                # A new file, or one of an older layout: state comes back from
                # the changelog.
                self._db.executescript(_SCHEMA)
                if version:
                    logger.warning(
                        "state store of an older layout emptied: path=%s version=%d",
                        path,
                        version,
                    )
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
            parts = self._db.execute(
                "SELECT blob FROM parts WHERE task = ? ORDER BY id", (task,)
            ).fetchall()
        except sqlite3.Error as exc:
            raise StateStoreError(f"{self.path}: cannot load {task}: {exc}") from exc
        return Checkpoint(int(row[0]), bytes(row[1]), merge([p[0] for p in parts]))

    def save(
        self,
        task: str,
        next_offset: int,
        engine: bytes,
        parts: list[bytes],
        snapshot: bool = False,
    ) -> None:
        """Append a commit's records (a snapshot replaces all before), atomically."""
        try:
            with self._transaction():
                if snapshot:
                    self._db.execute("DELETE FROM parts WHERE task = ?", (task,))
                self._db.executemany(
                    "INSERT INTO parts (task, blob) VALUES (?, ?)",
                    [(task, part) for part in parts],
                )
                self._db.execute(
                    "INSERT OR REPLACE INTO tasks VALUES (?, ?, ?)",
                    (task, next_offset, engine),
                )
        except sqlite3.Error as exc:
            raise StateStoreError(f"{self.path}: cannot save {task}: {exc}") from exc

    def replace(self, task: str, checkpoint: Checkpoint) -> None:
        """Overwrite a task with a checkpoint restored from elsewhere."""
        parts = list(pack(checkpoint.customers, at_least_one=True))
        self.save(task, checkpoint.next_offset, checkpoint.engine, parts, True)

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
