"""Environment-driven settings, read at call time so tests and the local stack can set them."""

from __future__ import annotations

import os

DEFAULT_CEILING_MICRO = 1_000_000_000_000


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


def billing_table() -> str:
    return os.environ.get("BILLING_TABLE", "BillingTable")


def ledger_table() -> str:
    return os.environ.get("LEDGER_TABLE", "LedgerTable")


def ceiling_micro() -> int:
    return _int("BILLING_CEILING_MICRO", DEFAULT_CEILING_MICRO)


def config_cache_seconds() -> float:
    return float(os.environ.get("BILLING_CONFIG_CACHE_SECONDS", "5") or 0)


def rate_limit_internal() -> int:
    return _int("BILLING_RATE_LIMIT_INTERNAL_PER_MIN", 200)


def rate_limit_admin() -> int:
    return _int("BILLING_RATE_LIMIT_ADMIN_PER_MIN", 30)


def secret(name: str) -> str:
    return os.environ.get(name, "")


def jwt_internal_issuer() -> str:
    return os.environ.get("BILLING_INTERNAL_JWT_ISSUER", "loa-finn")


def jwt_internal_audience() -> str:
    return os.environ.get("BILLING_INTERNAL_JWT_AUDIENCE", "arrakis-internal")


def jwt_admin_audience() -> str:
    return os.environ.get("BILLING_ADMIN_JWT_AUDIENCE", "arrakis-billing-admin")


def jwt_user_audience() -> str | None:
    return os.environ.get("BILLING_USER_JWT_AUDIENCE") or None


def jwt_user_issuer() -> str | None:
    return os.environ.get("BILLING_USER_JWT_ISSUER") or None


def hard_limits_enabled() -> bool:
    """Quota hard limits are on unless ENABLE_BILLING_HARD_LIMITS is explicitly false."""
    return os.environ.get("ENABLE_BILLING_HARD_LIMITS", "true").strip().lower() not in ("false", "0", "no", "off")


def default_plan_slug() -> str:
    return os.environ.get("BILLING_DEFAULT_PLAN_SLUG", "").strip() or "starter"


def work_queue_url() -> str:
    return os.environ.get("WORK_QUEUE_URL", "")


def retry_base_seconds() -> int:
    """First backoff step of the work queue; doubles per attempt (capped at SQS's 900 s)."""
    return _int("BILLING_RETRY_BASE_SECONDS", 30)


def max_work_attempts() -> int:
    """Attempts (work queue + DLQ processor) before an item is parked for manual review."""
    return _int("BILLING_MAX_WORK_ATTEMPTS", 6)
