"""A stand-in for a running local stack, for tests of the banner `make run` prints
(devserver.__main__.banner reads only these attributes)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from devserver.tokens import DEV_SECRET_DEFAULTS

ROUTES = (("GET", "/api/billing/pricing", "PricingFunction"),
          ("POST", "/api/internal/billing/reserve", "ReserveFunction"))


def fake_stack(routes: Any = ROUTES, *, background: Any = None,
               queues: dict[str, str] | None = None) -> SimpleNamespace:
    return SimpleNamespace(
        url="http://127.0.0.1:3000", moto_url="http://127.0.0.1:5000", tables=["BillingTable", "LedgerTable"],
        workers=4, seed="billing_core.ledger.bootstrap:seed", environ={}, secrets=dict(DEV_SECRET_DEFAULTS),
        gateway=SimpleNamespace(routes=list(routes)), background=background, queues=queues or {})
