"""One delivery of one event to one endpoint: a work item (operation `webhook_delivery`), so it
is retried with exponential backoff through the webhook queue, parked as manual_review after
BILLING_MAX_WORK_ATTEMPTS attempts, and listed and replayed by the admin DLQ routes.

Every attempt sends the same body with the same `webhook-id` (the event id), a fresh
`webhook-timestamp` and `webhook-signature` (Standard Webhooks: HMAC-SHA256 of
"{id}.{timestamp}.{body}" with the endpoint's secret; during a rotation's grace period one
signature per secret, space-separated). 2xx is delivered; any other answer, a timeout or a
connection error is retried; a target that is not allowed (targets.py) is parked at once.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import Webhook

from billing_core.kernel import clock, observability
from billing_core.kernel.observability import logger
from billing_core.outbound import targets
from billing_core.outbound.derive import DELIVERY_OPERATION
from billing_core.store import endpoints as endpoint_store
from billing_core.work.items import NeedsReview, operation


class DeliveryFailed(Exception):
    """The endpoint did not accept the event (non-2xx): retried with backoff."""


def headers(event_id: str, body: str, secrets: list[str], now: float) -> dict[str, str]:
    stamp = int(now)
    moment = datetime.fromtimestamp(stamp, tz=UTC)
    signatures = " ".join(Webhook(secret).sign(event_id, moment, body) for secret in secrets)
    return {"webhook-id": event_id, "webhook-timestamp": str(stamp), "webhook-signature": signatures}


@operation(DELIVERY_OPERATION)
def deliver(payload: dict[str, Any]) -> dict[str, Any]:
    endpoint_id, event_id, body = payload["endpointId"], payload["eventId"], payload["body"]
    endpoint = endpoint_store.get(endpoint_id)
    if endpoint is None or endpoint.status != "enabled":
        reason = "endpoint_deleted" if endpoint is None else "endpoint_disabled"
        observability.count("WebhooksSkipped")
        return {"delivered": False, "reason": reason, "endpointId": endpoint_id, "eventId": event_id}
    now = time.time()  # the receiver checks the timestamp against its own clock
    signed = headers(event_id, body, endpoint.signing_secrets(clock.iso(now)), now)
    try:
        status = targets.post(endpoint.url, body.encode(), signed)
    except targets.TargetRefused as refused:
        raise NeedsReview(f"target refused: {refused.message}", details={"endpointId": endpoint_id}) from None
    except targets.TargetUnreachable as exc:
        raise DeliveryFailed(f"endpoint unreachable: {exc}") from None
    if not 200 <= status < 300:
        observability.count("WebhooksFailed")
        logger.warning("webhook not accepted", extra={"endpointId": endpoint_id, "eventId": event_id, "status": status})
        raise DeliveryFailed(f"the endpoint answered HTTP {status}")
    observability.count("WebhooksDelivered")
    return {"delivered": True, "status": status, "endpointId": endpoint_id, "eventId": event_id,
            "type": payload.get("type"), "deliveredAt": clock.iso(now)}
