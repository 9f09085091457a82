"""Payment provider webhooks: verify the signature on the raw body, then apply the event.

An event that cannot be applied now (unknown order, a throttled table, an amount that needs a
human) is recorded as work and answered 202: the work queue retries it with backoff and parks
it for manual review after N attempts. Only if even that fails is the answer 500, so the
provider redelivers.
"""

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from billing_core.api import edge
from billing_core.api.models.payments import NowPaymentsIpn, StripeEvent, WebhookResponse, raw_json_body
from billing_core.kernel import observability, settings
from billing_core.kernel.errors import InvalidInput, Unauthorized
from billing_core.payments import events, parsing, signatures
from billing_core.payments.model import Outcome, PaymentEvent
from billing_core.work import items as work

router = edge.router()

SIGNATURE = ("INVALID_SIGNATURE", "SIGNATURE_EXPIRED", "WEBHOOK_NOT_CONFIGURED")


def _responses() -> dict[int, OpenAPIResponse]:
    """200 applied (or ignored, or a replay); 202 recorded as work to retry (e.g. an order not
    seen yet); 401 for a signature that does not verify; 422 for a signed body that is not an event."""
    out = edge.responses(WebhookResponse, 200, {Unauthorized: SIGNATURE, InvalidInput: ("INVALID_EVENT",)},
                         description="Applied, ignored or already applied")
    out[202] = {"description": "Queued: recorded as work, retried with backoff",
                "content": {"application/json": {"model": WebhookResponse}}}
    return out


def _headers() -> dict[str, str]:
    return {k.lower(): v for k, v in (router.current_event.headers or {}).items()}


def _apply(event: PaymentEvent) -> Response[WebhookResponse]:
    try:
        return edge.reply(WebhookResponse, events.apply_event(event))
    except Exception as exc:
        observability.logger.warning("payment event queued for retry", extra={
            "provider": event.provider, "orderId": event.order_id, "error": work.describe(exc)})
        item = work.enqueue("payment_event", event.to_dict(), reference=f"{event.provider}:{event.event_id}",
                            error=work.describe(exc))
        observability.count("PaymentEventsQueued")
        return edge.reply(WebhookResponse, Outcome("queued", item_id=item.item_id), 202)


@router.post(
    "/api/billing/webhooks/nowpayments",
    summary="NOWPayments IPN",
    description="Header x-nowpayments-sig: hex HMAC-SHA512 of the body with keys sorted. order_id is the "
    "top-up's orderId; USD price_amount is credited once, on `finished`.",
    tags=["webhooks"],
    responses=_responses(),
    security=[{"nowpaymentsSignature": []}],
    openapi_extensions=raw_json_body(NowPaymentsIpn, "x-nowpayments-sig"),
)
def nowpayments() -> Response[WebhookResponse]:
    raw = edge.raw_body(router.current_event.raw_event)
    signatures.verify_nowpayments(raw, _headers().get("x-nowpayments-sig"),
                                  settings.get().nowpayments_ipn_secret.get_secret_value())
    return _apply(parsing.parse_nowpayments(raw))


@router.post(
    "/api/billing/webhooks/stripe",
    summary="Stripe events",
    description="Header Stripe-Signature (t=, v1=; HMAC-SHA256 of t.body; 300 s tolerance both ways). "
    "checkout.session.completed with client_reference_id = orderId credits amount_total cents once; "
    "charge.refunded debits the refunded amount.",
    tags=["webhooks"],
    responses=_responses(),
    security=[{"stripeSignature": []}],
    openapi_extensions=raw_json_body(StripeEvent, "Stripe-Signature"),
)
def stripe() -> Response[WebhookResponse]:
    raw = edge.raw_body(router.current_event.raw_event)
    signatures.verify_stripe(raw, _headers().get("stripe-signature"),
                             settings.get().stripe_webhook_secret.get_secret_value())
    event = parsing.parse_stripe(raw)
    if event is None:
        return edge.reply(WebhookResponse, Outcome("ignored"))
    return _apply(event)


lambda_handler = edge.handler(router, auth_kind=None, parse_body=False)
