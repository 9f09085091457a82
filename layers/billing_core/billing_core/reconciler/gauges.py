"""Gauges the reconciliation reports beside its checks: work items parked in manual_review, and
campaign budget usage (the 'campaign budget > 90% spent' alarm). A gauge that fails is an error
row of the run, never the end of it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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


def _budget_usage() -> Callable[[], list[dict[str, Any]]] | None:
    """Where campaign budget usage comes from, or None when there is none. The one place that
    names the campaigns module: imported when asked, so a deployment without it runs fine."""
    try:
        from billing_core.campaigns import grants as campaigns
    except ImportError:
        return None
    return getattr(campaigns, "budget_usage", None)


def campaign_usage(report: Report) -> list[CampaignUsage]:
    """Every active campaign's usage, most used first."""
    usage_fn = _budget_usage()
    if usage_fn is None:
        return []
    try:
        out = []
        for c in usage_fn():
            used = int(c["usedBps"])
            out.append(CampaignUsage(campaign_id=c["campaignId"], budget_micro=int(c["budgetMicro"]),
                                     granted_micro=int(c["grantedMicro"]), used_bps=used))
        return sorted(out, key=lambda c: (-c.used_bps, c.campaign_id))
    except Exception as exc:
        logger.exception("campaign budget usage failed")
        report(f"campaign budget usage failed: {type(exc).__name__}: {exc}")
        return []
