"""Webhook endpoints, as operators manage them: register (the secret is shown once), list,
disable/enable, delete, rotate the secret; and an account's low-balance threshold.

A secret is `whsec_` + base64 of 32 random bytes (the Standard Webhooks format, which receivers'
libraries take as it is). After a rotation the previous secret still signs, beside the new one,
for ROTATION_GRACE_SECONDS, so a receiver can switch without missing a delivery.
"""

from __future__ import annotations

import base64
import secrets
import uuid

from billing_core.kernel import clock, settings
from billing_core.kernel.context import Context
from billing_core.kernel.errors import Conflict, InvalidInput, NotFound
from billing_core.outbound import targets
from billing_core.outbound.model import (
    EVENT_TYPES,
    MAX_ENDPOINTS,
    BalanceAlert,
    Endpoint,
    EndpointDeleted,
    EndpointSecret,
)
from billing_core.store import alerts as alert_store
from billing_core.store import endpoints as store
from billing_core.store.cached import Cached

ROTATION_GRACE_SECONDS = 24 * 3600
SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _not_found(endpoint_id: str) -> NotFound:
    return NotFound("no such webhook endpoint", code="WEBHOOK_ENDPOINT_NOT_FOUND", details={"endpointId": endpoint_id})


def _shown(endpoint: Endpoint) -> EndpointSecret:
    return EndpointSecret(endpoint_id=endpoint.endpoint_id, secret=endpoint.secret, url=endpoint.url,
                          events=endpoint.events, status=endpoint.status, description=endpoint.description,
                          previous_secret_expires_at=endpoint.previous_secret_expires_at)


def create(ctx: Context, *, url: str, events: list[str], description: str | None) -> EndpointSecret:
    """Register a receiver for `events`. Its URL must be a target targets.py allows."""
    targets.check_registration(url)
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown or not events:
        raise InvalidInput("events must name at least one known event type", code="INVALID_EVENT_TYPES",
                           details={"unknown": unknown, "allowed": list(EVENT_TYPES)})
    if len(store.all_endpoints()) >= MAX_ENDPOINTS:
        raise Conflict(f"at most {MAX_ENDPOINTS} webhook endpoints; delete one first", code="TOO_MANY_ENDPOINTS")
    now_iso = clock.iso(clock.now())
    endpoint = Endpoint(endpoint_id=f"we_{uuid.uuid4().hex}", url=url,
                        events=tuple(e for e in EVENT_TYPES if e in set(events)), description=description,
                        status="enabled", created_at=now_iso, updated_at=now_iso, created_by=ctx.actor,
                        secret=new_secret())
    store.create(endpoint)
    invalidate()
    return _shown(endpoint)


def get(endpoint_id: str) -> Endpoint:
    endpoint = store.get(endpoint_id)
    if endpoint is None:
        raise _not_found(endpoint_id)
    return endpoint


def listing() -> list[Endpoint]:
    return store.all_endpoints()


def set_enabled(ctx: Context, endpoint_id: str, enabled: bool) -> Endpoint:
    """Disabled: no new event is sent to it, and its pending deliveries end without being sent."""
    endpoint = store.set_status(endpoint_id, "enabled" if enabled else "disabled", clock.iso(clock.now()))
    if endpoint is None:
        raise _not_found(endpoint_id)
    invalidate()
    return endpoint


def delete(ctx: Context, endpoint_id: str) -> EndpointDeleted:
    if not store.delete(endpoint_id):
        raise _not_found(endpoint_id)
    invalidate()
    return EndpointDeleted(endpoint_id=endpoint_id, deleted=True)


def rotate(ctx: Context, endpoint_id: str) -> EndpointSecret:
    """A new secret, shown once; the previous one keeps signing for ROTATION_GRACE_SECONDS."""
    current = get(endpoint_id)
    now = clock.now()
    rotated = store.rotate(endpoint_id, seen_secret=current.secret, secret=new_secret(),
                           previous_until=clock.iso(now + ROTATION_GRACE_SECONDS), at=clock.iso(now))
    if rotated is None:
        raise Conflict("the endpoint changed meanwhile (rotated or deleted); read it and retry",
                       code="WEBHOOK_ENDPOINT_CHANGED", details={"endpointId": endpoint_id})
    invalidate()
    return _shown(rotated)


# -- what the dispatcher reads --------------------------------------------------------------------

_cache: Cached[list[Endpoint]] = Cached(store.all_endpoints)


def invalidate() -> None:
    _cache.invalidate()


def current() -> list[Endpoint]:
    """Every endpoint, read at most once per BILLING_CONFIG_CACHE_SECONDS (one Query)."""
    return _cache.get()


# -- low-balance threshold ------------------------------------------------------------------------


def balance_alert(account_id: str) -> BalanceAlert:
    own = alert_store.threshold(account_id)
    if own is None:
        return BalanceAlert(account_id, settings.get().low_balance_micro, "default")
    return BalanceAlert(account_id, own, "account")


def set_balance_alert(ctx: Context, account_id: str, low_balance_micro: int | None) -> BalanceAlert:
    """The account's own threshold (0 turns balance.low off for it); None returns it to the default."""
    alert_store.set_threshold(account_id, low_balance_micro, clock.iso(clock.now()), ctx.actor)
    return balance_alert(account_id)
