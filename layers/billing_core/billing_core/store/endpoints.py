"""Webhook endpoints (BillingTable `WEBHOOKS` / `ENDPOINT#<id>`): one partition, so listing them
(the admin route, the dispatcher) is one Query. The item holds the signing secret (and the
previous one during a rotation's grace period); nothing reads it but delivery, nothing logs it."""

from __future__ import annotations

from typing import Any

from billing_core.kernel import settings
from billing_core.outbound.model import Endpoint
from billing_core.store import dynamo, keys


def _table() -> str:
    return settings.get().billing_table


def from_item(item: dict[str, Any]) -> Endpoint:
    return Endpoint(
        endpoint_id=item["endpointId"], url=item["url"], events=tuple(item.get("events") or ()),
        description=item.get("description"), status=item["status"], created_at=item["createdAt"],
        updated_at=item["updatedAt"], created_by=item.get("createdBy", ""),
        secret_rotated_at=item.get("secretRotatedAt"), previous_secret_expires_at=item.get("previousSecretExpiresAt"),
        secret=item["secret"], previous_secret=item.get("previousSecret"),
    )


def create(endpoint: Endpoint) -> bool:
    return dynamo.put_item(_table(), {
        **keys.endpoint_key(endpoint.endpoint_id), "entityType": "webhook_endpoint",
        "endpointId": endpoint.endpoint_id, "url": endpoint.url, "events": list(endpoint.events),
        "description": endpoint.description, "status": endpoint.status, "secret": endpoint.secret,
        "createdAt": endpoint.created_at, "updatedAt": endpoint.updated_at, "createdBy": endpoint.created_by,
    }, condition="attribute_not_exists(pk)")


def get(endpoint_id: str) -> Endpoint | None:
    item = dynamo.get(_table(), keys.endpoint_key(endpoint_id))
    return from_item(item) if item else None


def all_endpoints() -> list[Endpoint]:
    items = dynamo.query_all(_table(), key_name="pk", key_value=keys.WEBHOOKS_PK,
                             sort=dynamo.Range("begins_with", "sk", keys.ENDPOINT_PREFIX), consistent=True)
    return sorted((from_item(i) for i in items), key=lambda e: (e.created_at, e.endpoint_id))


def set_status(endpoint_id: str, status: str, at: str) -> Endpoint | None:
    """None when there is no such endpoint."""
    try:
        new = dynamo.update_item(_table(), keys.endpoint_key(endpoint_id), "SET #s = :s, updatedAt = :now",
                                 condition="attribute_exists(pk)", names={"#s": "status"},
                                 values={":s": status, ":now": at}, return_new=True)
    except dynamo.ConditionFailed:
        return None
    return from_item(new) if new else None


def rotate(endpoint_id: str, *, seen_secret: str, secret: str, previous_until: str, at: str) -> Endpoint | None:
    """The new secret replaces the one that was read (which stays valid until previous_until).
    None when the endpoint is gone or was rotated meanwhile."""
    try:
        new = dynamo.update_item(
            _table(), keys.endpoint_key(endpoint_id),
            "SET secret = :new, previousSecret = :old, previousSecretExpiresAt = :until, secretRotatedAt = :now, "
            "updatedAt = :now", condition="attribute_exists(pk) AND secret = :old",
            values={":new": secret, ":old": seen_secret, ":until": previous_until, ":now": at}, return_new=True)
    except dynamo.ConditionFailed:
        return None
    return from_item(new) if new else None


def delete(endpoint_id: str) -> bool:
    return dynamo.delete_item(_table(), keys.endpoint_key(endpoint_id), condition="attribute_exists(pk)")
