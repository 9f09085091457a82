"""Gauges the reconciliation reports beside its checks: work items parked in manual_review, and
campaign budget usage (the 'campaign budget > 90% spent' alarm). A gauge that fails is an error
row of the run, never the end of it."""

from __future__ import annotations

from collections.abc import Callable

from billing_core.campaigns import audit
from billing_core.kernel.observability import logger
from billing_core.reconciler.model import CampaignUsage
from billing_core.work import items as work

Report = Callable[[str], None]  # adds an error row to the run


def manual_review(report: Report) -> int | None:
    try:
        return work.count("manual_review")
    except Exception as exc:  # a gauge must not sink the reconciliation
        logger.exception("manual_review count failed")
        report(f"manual_review count failed: {type(exc).__name__}: {exc}")
        return None


def campaign_usage(report: Report) -> list[CampaignUsage]:
    """Every active campaign's usage, most used first."""
    try:
        out = [CampaignUsage(campaign_id=u.campaign_id, budget_micro=u.budget_micro, granted_micro=u.granted_micro,
                             used_bps=u.used_bps) for u in audit.budget_usage()]
        return sorted(out, key=lambda c: (-c.used_bps, c.campaign_id))
    except Exception as exc:
        logger.exception("campaign budget usage failed")
        report(f"campaign budget usage failed: {type(exc).__name__}: {exc}")
        return []
