"""The changelog format: customers packed per record, deltas and snapshots replayed."""

from __future__ import annotations

import marshal

import pytest

from monitor.errors import SourceError
from monitor.state.changelog import (
    DELTA_KEY,
    ENGINE_KEY,
    FIRST_PART_HEADER,
    OFFSET_HEADER,
    PART_BYTES,
    SNAPSHOT_KEY,
    ChangelogReader,
    pack,
)


def _engine(reader: ChangelogReader, offset: int) -> None:
    reader.add(ENGINE_KEY, b"engine-%d" % offset, [(OFFSET_HEADER, b"%d" % offset)])


def test_parts_stay_under_the_size_and_keep_every_customer() -> None:
    blobs: dict[str, bytes | None] = {f"c{i}": bytes(1000) for i in range(1000)}
    blobs["gone"] = None

    parts = list(pack(blobs))

    assert len(parts) == 3
    assert all(len(part) <= PART_BYTES + 64 for part in parts)
    merged: dict[str, bytes | None] = {}
    for part in parts:
        merged.update(marshal.loads(part)[1])
    assert merged == blobs


def test_one_blob_larger_than_a_part_gets_a_part_of_its_own() -> None:
    parts = list(pack({"a": b"x", "big": bytes(PART_BYTES * 2), "b": b"y"}))

    assert [sorted(marshal.loads(p)[1]) for p in parts] == [["a"], ["big"], ["b"]]


def test_deltas_replay_in_order_and_none_forgets() -> None:
    reader = ChangelogReader()
    for part in pack({"a": b"1", "b": b"1"}):
        reader.add(DELTA_KEY, part, [])
    _engine(reader, 10)
    for part in pack({"a": b"2", "b": None}):
        reader.add(DELTA_KEY, part, [])
    _engine(reader, 20)

    checkpoint = reader.checkpoint()

    assert checkpoint is not None
    assert checkpoint.customers == {"a": b"2"}
    assert (checkpoint.next_offset, checkpoint.engine) == (20, b"engine-20")


def test_a_snapshot_replaces_everything_read_before_it() -> None:
    reader = ChangelogReader()
    for part in pack({"old": b"1", "a": b"1"}):
        reader.add(DELTA_KEY, part, [])
    _engine(reader, 5)
    first, *rest = pack({f"c{i}": bytes(500) for i in range(2000)} | {"a": b"3"})
    reader.add(SNAPSHOT_KEY, first, [(FIRST_PART_HEADER, b"1")])
    for part in rest:
        reader.add(SNAPSHOT_KEY, part, [])
    _engine(reader, 9)

    checkpoint = reader.checkpoint()

    assert checkpoint is not None
    assert "old" not in checkpoint.customers
    assert len(checkpoint.customers) == 2001
    assert checkpoint.customers["a"] == b"3"


def test_nothing_read_is_no_checkpoint() -> None:
    reader = ChangelogReader()
    for part in pack({"a": b"1"}):
        reader.add(DELTA_KEY, part, [])

    assert reader.checkpoint() is None


def test_unknown_keys_and_formats_are_refused() -> None:
    reader = ChangelogReader()
    with pytest.raises(SourceError, match="older version must be deleted"):
        reader.add(b"customer-1", b"blob", [])
    with pytest.raises(SourceError, match="format 1"):
        reader.add(DELTA_KEY, marshal.dumps((1, {})), [])
