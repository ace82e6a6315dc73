"""Shared clear findings: one per recheck day, the table kept small."""

from __future__ import annotations

from monitor.engine.detectors.common import QUIET, quiet_until


def test_quiet_until_shares_one_finding_per_day_and_stays_bounded() -> None:
    assert quiet_until(None) is QUIET
    first = quiet_until(20_000)
    assert first.fire is False
    assert first.recheck_day == 20_000
    assert quiet_until(20_000) is first

    findings = [quiet_until(day) for day in range(30_000, 31_000)]

    assert [f.recheck_day for f in findings] == list(range(30_000, 31_000))
    assert all(f.fire is False and f.evidence == {} for f in findings)


def test_quiet_until_days_sharing_a_slot_each_get_their_own() -> None:
    """Days 512 apart share a slot: each call still returns its own day."""
    for day in (40_000, 40_512, 40_000, 41_024, 40_512):
        assert quiet_until(day).recheck_day == day
