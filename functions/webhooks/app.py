"""Payment provider webhooks: verify the signature on the raw body, then apply the event.

An event that cannot be applied now (unknown order, a throttled table, an amount that needs a
human) is recorded as work and answered 202: the work queue retries it with backoff and parks
it for manual review after N attempts. Only if even that fails is the answer 500, so the
provider redelivers.
"""

from billing_core.api import edge as http
from billing_core.kernel import observability, settings
from billing_core.payments import events as payments
from billing_core.payments import parsing as provider_events
from billing_core.payments import signatures as webhook_signatures
from billing_core.work import items as work

router = http.router()


def _headers() -> dict[str, str]:
    return {k.lower(): v for k, v in (router.current_event.headers or {}).items()}


def _apply(event: payments.PaymentEvent) -> dict:
    try:
        outcome = payments.apply_event(event)
    except Exception as exc:
        http.logger.warning("payment event queued for retry", extra={
            "provider": event.provider, "orderId": event.order_id, "error": work.describe(exc)})
        item = work.enqueue("payment_event", event.to_dict(), reference=f"{event.provider}:{event.event_id}",
                            error=work.describe(exc))
        observability.count("PaymentEventsQueued")
        return http.json_response({"received": True, "outcome": "queued", "itemId": item["itemId"]}, 202)
    return http.json_response({"received": True, **outcome})


@router.post(
    "/api/billing/webhooks/nowpayments",
    summary="NOWPayments IPN",
    description="Header x-nowpayments-sig: hex HMAC-SHA512 of the body with keys sorted. order_id is the "
    "top-up's orderId; USD price_amount is credited once, on `finished`.",
    tags=["webhooks"],
)
def nowpayments():
    raw = http.raw_body(router.current_event.raw_event)
    webhook_signatures.verify_nowpayments(raw, _headers().get("x-nowpayments-sig"),
                                          settings.secret("NOWPAYMENTS_IPN_SECRET"))
    return _apply(provider_events.parse_nowpayments(raw))


@router.post(
    "/api/billing/webhooks/stripe",
    summary="Stripe events",
    description="Header Stripe-Signature (t=, v1=; HMAC-SHA256 of t.body; 300 s tolerance both ways). "
    "checkout.session.completed with client_reference_id = orderId credits amount_total cents once; "
    "charge.refunded debits the refunded amount.",
    tags=["webhooks"],
)
def stripe():
    raw = http.raw_body(router.current_event.raw_event)
    webhook_signatures.verify_stripe(raw, _headers().get("stripe-signature"), settings.secret("STRIPE_WEBHOOK_SECRET"))
    event = provider_events.parse_stripe(raw)
    if event is None:
        return http.json_response({"received": True, "outcome": "ignored"})
    return _apply(event)


lambda_handler = http.handler(router, auth_kind=None, parse_body=False)
