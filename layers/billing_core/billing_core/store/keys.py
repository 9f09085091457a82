"""Every key shape in one place, and the parsers that read them back. Identifiers are
validated (kernel.ids) before they reach here, so none can contain the '#' separator and forge
another item's key."""

from __future__ import annotations

import hashlib

PENDING_SHARDS = 8
NO_EXPIRY = "~"  # sorts after every ISO timestamp: non-expiring lots are drawn last


# BillingTable -------------------------------------------------------------------------------

def account_pk(account_id: str) -> str:
    return f"ACCT#{account_id}"


def is_account_pk(pk: str) -> bool:
    return pk.startswith("ACCT#")


def balance_prefix(pool_id: str | None = None) -> str:
    """Lots and debt of an account share this prefix, so one Query reads a whole balance."""
    return f"BAL#{pool_id}#" if pool_id else "BAL#"


def lot_sk(pool_id: str, expires_at: str | None, created_at: str, lot_id: str) -> str:
    """Sort order = draw-down order: earliest expiry first, then oldest, then non-expiring."""
    return f"BAL#{pool_id}#LOT#{expires_at or NO_EXPIRY}#{created_at}#{lot_id}"


def account_totals_key(account_id: str) -> dict[str, str]:
    """Lifetime totals of an account (paid, refunded): outside the BAL# prefix, so balance
    reads do not see it, and written only by payments and refunds, never by adjustments."""
    return {"pk": account_pk(account_id), "sk": "TOTALS"}


TOTALS_SK = "TOTALS"  # account_totals_key


def debt_sk(pool_id: str) -> str:
    return f"BAL#{pool_id}#DEBT"


def is_lot_sk(sk: str) -> bool:
    return sk.startswith("BAL#") and "#LOT#" in sk


def is_balance_sk(sk: str) -> bool:
    """A lot or a pool's shortfall item (parse_balance_sk tells which)."""
    return sk.startswith("BAL#")


BALANCE_LOT = "LOT"
BALANCE_DEBT = "DEBT"


def parse_balance_sk(sk: str) -> tuple[str, str]:
    """BAL#<pool>#LOT#... or BAL#<pool>#DEBT -> (pool, 'LOT' | 'DEBT')."""
    pool, _, rest = sk[len("BAL#"):].partition("#")
    return pool, rest.split("#", 1)[0]


def account_of(pk: str) -> str:
    """ACCT#<account>[#...] -> account (the inverse of account_pk, entry_pk, pool_pk, type_pk)."""
    return pk[len("ACCT#"):].split("#", 1)[0]


def reservation_key(reservation_id: str) -> dict[str, str]:
    return {"pk": f"RES#{reservation_id}", "sk": "RES"}


def reservation_id_of(pk: str) -> str:
    return pk[len("RES#"):]


def is_reservation_key(pk: str, sk: str) -> bool:
    return pk.startswith("RES#") and sk == "RES"


def pending_pk(reservation_id: str) -> str:
    return pending_shard_pk(int(hashlib.sha256(reservation_id.encode()).hexdigest(), 16) % PENDING_SHARDS)


def pending_shard_pk(shard: int) -> str:
    return f"PENDING#{shard}"


CONFIG_KEY = {"pk": "CONFIG", "sk": "BILLING"}


def idempotency_key(scope: str, key: str) -> dict[str, str]:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return {"pk": f"IDEM#{scope}#{digest}", "sk": "IDEM"}


def rate_key(kind: str, subject: str, window: int) -> dict[str, str]:
    digest = hashlib.sha256(subject.encode()).hexdigest()[:32]
    return {"pk": f"RATE#{kind}#{digest}", "sk": f"W#{window}"}


def system_account_key(account_id: str) -> dict[str, str]:
    return {"pk": account_pk(account_id), "sk": "ACCOUNT"}


# Payments and background work (BillingTable) -------------------------------------------------

def payment_key(order_id: str) -> dict[str, str]:
    return {"pk": f"PAY#{order_id}", "sk": "PAY"}


def provider_event_key(provider: str, event_id: str) -> dict[str, str]:
    """One item per provider event applied: a redelivered event finds it and changes nothing."""
    digest = hashlib.sha256(event_id.encode()).hexdigest()
    return {"pk": f"PAYEVT#{provider}#{digest}", "sk": "PAYEVT"}


def work_key(item_id: str) -> dict[str, str]:
    return {"pk": f"WORK#{item_id}", "sk": "WORK"}


def work_status_pk(status: str) -> str:
    """Partition of the sparse work-by-status index: operators list parked work by status."""
    return f"WORKSTATUS#{status}"


RECONCILIATION_KEY = {"pk": "RECONCILIATION", "sk": "LAST"}
RECONCILIATION_RUN_PREFIX = "RUN#"


def reconciliation_run_key(started_at: str, run_id: str) -> dict[str, str]:
    """One run's history item, beside the last result: newest first by start time."""
    return {"pk": RECONCILIATION_KEY["pk"], "sk": f"{RECONCILIATION_RUN_PREFIX}{started_at}#{run_id}"}


# Plans and quotas (BillingTable) -------------------------------------------------------------

PLANS_PK = "PLANS"  # every plan in one partition: listing them is one Query
PLAN_PREFIX = "PLAN#"


def plan_key(slug: str) -> dict[str, str]:
    return {"pk": PLANS_PK, "sk": f"{PLAN_PREFIX}{slug}"}


def org_state_key(org_id: str) -> dict[str, str]:
    return {"pk": f"ORG#{org_id}", "sk": "STATE"}


def org_usage_key(org_id: str, period: str) -> dict[str, str]:
    """period = 'YYYY-MM' (UTC calendar month): a new month starts a new counter item."""
    return {"pk": f"ORG#{org_id}", "sk": f"USAGE#{period}"}


def org_audit_key(org_id: str, at: str, actor: str) -> dict[str, str]:
    """Per-org trail of operator changes, in time order."""
    return {"pk": f"AUDIT#org#{org_id}", "sk": f"{at}#{actor}"}


def scoped(owner: str, key: str) -> str:
    """A caller's idempotency key scoped to its owner (an org, a campaign): '#' cannot occur in
    either id, so two owners' keys never meet."""
    return f"{owner}#{key}"


# Campaigns (BillingTable) --------------------------------------------------------------------

CAMPAIGNS_PK = "CAMPAIGNS"  # every campaign in one partition: listing them is one Query
CAMPAIGN_PREFIX = "CAMPAIGN#"
GRANTEE_PREFIX = "GRANTEE#"


def campaign_key(campaign_id: str) -> dict[str, str]:
    return {"pk": CAMPAIGNS_PK, "sk": f"{CAMPAIGN_PREFIX}{campaign_id}"}


def campaign_pk(campaign_id: str) -> str:
    """The partition of a campaign's grantees (per-account totals)."""
    return f"{CAMPAIGN_PREFIX}{campaign_id}"


def grantee_key(campaign_id: str, account_id: str) -> dict[str, str]:
    return {"pk": campaign_pk(campaign_id), "sk": f"{GRANTEE_PREFIX}{account_id}"}


# Outbound events (BillingTable) ---------------------------------------------------------------

WEBHOOKS_PK = "WEBHOOKS"  # every endpoint in one partition: the dispatcher reads them with one Query
ENDPOINT_PREFIX = "ENDPOINT#"


def endpoint_key(endpoint_id: str) -> dict[str, str]:
    return {"pk": WEBHOOKS_PK, "sk": f"{ENDPOINT_PREFIX}{endpoint_id}"}


ALERTS_SK = "ALERTS"  # an account's own alert settings (low-balance threshold)
LOW_BALANCE_PREFIX = "LOWBAL#"


def alerts_key(account_id: str) -> dict[str, str]:
    """Outside the BAL# prefix: balance reads and the reconciler's lot checks never see it."""
    return {"pk": account_pk(account_id), "sk": ALERTS_SK}


def low_balance_key(account_id: str, pool_id: str) -> dict[str, str]:
    """Whether a pool was last seen below its threshold, and how many times it crossed: the
    once-per-crossing memory of balance.low."""
    return {"pk": account_pk(account_id), "sk": f"{LOW_BALANCE_PREFIX}{pool_id}"}


# LedgerTable --------------------------------------------------------------------------------

def entry_pk(account_id: str) -> str:
    """An account's own ledger partition. (Deployments before the finalize entry carried the
    revenue shares wrote share entries into `ACCT#<system account>#S<nn>` partitions, which only
    the reconciler's scan still reads.)"""
    return f"ACCT#{account_id}"


def entry_sk(created_at: str, entry_id: str) -> str:
    return f"E#{created_at}#{entry_id}"


ENTRY_PREFIX = "E#"  # every entry of a partition (entry_sk)


def entries_from(created_at: str) -> str:
    """The lower bound of the sort keys of entries created at or after `created_at` (entry_sk)."""
    return f"{ENTRY_PREFIX}{created_at}"


def pool_pk(account_id: str, pool_id: str) -> str:
    return f"ACCT#{account_id}#POOL#{pool_id}"


def type_pk(account_id: str, entry_type: str) -> str:
    return f"ACCT#{account_id}#TYPE#{entry_type}"
