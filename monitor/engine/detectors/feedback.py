"""Feedback detectors: a steady cadence gone quiet, negative answers."""

from __future__ import annotations

import itertools
import math
from typing import Any

from monitor.engine.detectors.common import (
    QUIET,
    Context,
)
from monitor.engine.detectors.params import (
    NegativeFeedbackParams,
    VanishingFeedbackParams,
)
from monitor.engine.lifecycle import ChurnWarning, Finding
from monitor.state.customer import (
    CustomerState,
    unpack_feedback,
)

__all__ = ["negative_feedback", "vanishing_feedback"]


def vanishing_feedback(
    rule: VanishingFeedbackParams,
    state: CustomerState,
    ctx: Context,
    warning: ChurnWarning | None,
) -> Finding:
    """Fire when a steady feedback cadence stops for several usual intervals."""
    days = state.feedback_days_in(rule.channel_mask)
    if len(days) < rule.min_responses or days[-1] - days[0] < rule.min_span_days:
        return QUIET
    # Mean gap: a Poisson stream with this rate stays silent for k gaps by chance
    # with probability e^-k, which is what silence_factor sets.
    usual = (days[-1] - days[0]) / (len(days) - 1)
    if usual > rule.max_usual_interval_days:
        return QUIET

    # Bursty feedback (a ticket and its CSAT) shrinks the mean gap, so the silence
    # must also be clearly longer than any gap this customer has had before.
    longest = max(b - a for a, b in itertools.pairwise(days))
    limit = math.ceil(
        max(
            rule.silence_factor * max(usual, 1),
            rule.longest_gap_factor * longest,
            rule.min_silent_days,
        )
    )
    silent = ctx.day - days[-1]
    if silent < limit:
        return Finding(False, recheck_day=days[-1] + limit)
    if warning is None and ctx.guard_active:
        return Finding(None, recheck_day=ctx.day + 1)
    evidence = {
        "days_silent": silent,
        "usual_interval_days": round(usual, 1),
        "responses_seen": len(days),
        "summary": f"no feedback for {silent} days; usually every {usual:.0f} days",
    }
    return Finding(True, evidence)


def _negatives(rule: NegativeFeedbackParams, packed: list[int]) -> list[int]:
    """Return the packed responses that count as negative under the rule."""
    if rule.max_score is None and rule.max_sentiment is None:
        return packed
    score_top, sentiment_top = rule.score_top, rule.sentiment_top
    return [
        p for p in packed if (p >> 8) & 0xFF <= score_top or p & 0xFF <= sentiment_top
    ]


def negative_feedback(
    rule: NegativeFeedbackParams,
    state: CustomerState,
    ctx: Context,
    warning: ChurnWarning | None,
) -> Finding:
    """Fire on enough negative responses within the window, unless answered since."""
    first = ctx.day - rule.window_days + 1
    recent = state.feedback_between(first, ctx.day, rule.channel)
    negative = _negatives(rule, recent)
    # min_count >= 1, so both lists hold a response here; equal packed
    # responses get equal verdicts, so comparing values tells if the latest counts.
    if len(negative) < rule.min_count or negative[-1] != recent[-1]:
        return QUIET

    _, channel, score, sentiment = unpack_feedback(negative[-1])
    evidence: dict[str, Any] = {
        "negative_responses": len(negative),
        "window_days": rule.window_days,
        "channel": channel,
    }
    if score is not None:
        evidence["last_score"] = score
    if sentiment is not None:
        evidence["last_sentiment"] = round(sentiment, 2)
    evidence["summary"] = _feedback_summary(evidence)
    recheck = (negative[-rule.min_count] >> 24) + rule.window_days
    return Finding(True, evidence, recheck)


def _feedback_summary(evidence: dict[str, Any]) -> str:
    parts = [f"{evidence['negative_responses']} negative {evidence['channel']}"]
    if "last_score" in evidence:
        parts.append(f"last score {evidence['last_score']:g}")
    if "last_sentiment" in evidence:
        parts.append(f"sentiment {evidence['last_sentiment']:+.2f}")
    return ", ".join(parts) + f" in {evidence['window_days']}d"
