"""The SQLite store writes a checkpoint atomically and reads back what it wrote."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from monitor.errors import StateStoreError
from monitor.state.changelog import pack
from monitor.state.store import Checkpoint, StateStore


def test_store_round_trip_incremental(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.db")
    store.save("t:0", 10, b"E1", list(pack({"a": b"A1", "b": b"B1"})))
    store.save("t:0", 25, b"E2", list(pack({"a": b"A2", "b": None})))

    checkpoint = StateStore(tmp_path / "s.db").load("t:0")

    assert checkpoint == Checkpoint(25, b"E2", {"a": b"A2"})
    assert store.load("t:1") is None
    assert store.tasks() == ["t:0"]


def test_snapshot_replaces_what_came_before(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.db")
    store.save("t:0", 10, b"E1", list(pack({"a": b"A1", "b": b"B1"})))
    store.save("t:0", 20, b"E2", list(pack({"c": b"C1"})), snapshot=True)
    store.save("t:0", 30, b"E3", list(pack({}, at_least_one=True)), snapshot=True)

    assert store.load("t:0") == Checkpoint(30, b"E3", {})


def test_store_of_an_older_layout_is_emptied(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE tasks (task TEXT PRIMARY KEY, n INTEGER, e BLOB)")
        db.execute("INSERT INTO tasks VALUES ('t:0', 5, x'00')")
        db.execute("PRAGMA user_version = 1")
    db.close()

    assert StateStore(path).load("t:0") is None


def test_store_replace_drops_old_customers(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.db")
    store.save("t:0", 10, b"E1", list(pack({"a": b"A1"})))

    store.replace("t:0", Checkpoint(40, b"E9", {"z": b"Z"}))

    assert store.load("t:0") == Checkpoint(40, b"E9", {"z": b"Z"})


def test_store_unusable_path_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")

    with pytest.raises(StateStoreError, match="cannot open state store"):
        StateStore(blocker / "s.db")
