"""Provider invoice creation: NOWPayments' invoice API and Stripe Checkout. Only used when the
provider's key is configured; locally a top-up is recorded as pending without an invoice."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

from billing_core.kernel import settings
from billing_core.kernel.errors import UpstreamUnavailable

NOWPAYMENTS_INVOICE_URL = "https://api.nowpayments.io/v1/invoice"
TIMEOUT_SECONDS = 8


@dataclass(frozen=True)
class Invoice:
    invoice_id: str
    url: str


class ProviderUnavailable(UpstreamUnavailable):
    code = "PROVIDER_UNAVAILABLE"


class ProviderError(Exception):
    def as_http(self) -> ProviderUnavailable:
        return ProviderUnavailable("the payment provider did not create an invoice; try again later",
                                   details={"reason": str(self)[:200]})


def _key(provider: str) -> str:
    s = settings.get()
    key = s.nowpayments_api_key if provider == "nowpayments" else s.stripe_secret_key
    return key.get_secret_value().strip()


def configured(provider: str) -> bool:
    return bool(_key(provider))


def _public_url() -> str:
    return settings.get().public_url.rstrip("/")


def _usd(amount_micro: int) -> str:
    return f"{amount_micro // 1_000_000}.{(amount_micro % 1_000_000) // 10_000:02d}"


def _nowpayments(order_id: str, amount_micro: int) -> Invoice:
    body = {
        "price_amount": _usd(amount_micro), "price_currency": "usd", "order_id": order_id,
        "order_description": f"Credit top-up {order_id}",
    }
    if _public_url():
        body["ipn_callback_url"] = f"{_public_url()}/api/billing/webhooks/nowpayments"
    s = settings.get()
    for name, value in (("success_url", s.topup_success_url), ("cancel_url", s.topup_cancel_url)):
        if value:
            body[name] = value
    request = urllib.request.Request(
        NOWPAYMENTS_INVOICE_URL, data=json.dumps(body).encode(), method="POST",
        headers={"x-api-key": _key("nowpayments"), "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            answer = json.loads(response.read())
    except (urllib.error.URLError, TimeoutError, ValueError) as exc:
        raise ProviderError(f"NOWPayments invoice: {type(exc).__name__}") from None
    if not answer.get("id") or not answer.get("invoice_url"):
        raise ProviderError("NOWPayments invoice: no id or invoice_url in the answer")
    return Invoice(invoice_id=str(answer["id"]), url=str(answer["invoice_url"]))


def _stripe(order_id: str, amount_micro: int) -> Invoice:
    import stripe

    success, cancel = settings.get().topup_success_url, settings.get().topup_cancel_url
    if not success or not cancel:
        raise ProviderError("Stripe checkout: TOPUP_SUCCESS_URL and TOPUP_CANCEL_URL are not configured")
    client = stripe.StripeClient(_key("stripe"))
    try:
        session = client.v1.checkout.sessions.create(params={
            "mode": "payment",
            "client_reference_id": order_id,
            "line_items": [{"quantity": 1, "price_data": {
                "currency": "usd", "unit_amount": amount_micro // 10_000,
                "product_data": {"name": "Credit top-up"}}}],
            "metadata": {"orderId": order_id},
            "payment_intent_data": {"metadata": {"orderId": order_id}},
            "success_url": success,
            "cancel_url": cancel,
        })
    except stripe.StripeError as exc:
        raise ProviderError(f"Stripe checkout: {type(exc).__name__}") from None
    return Invoice(invoice_id=session.id, url=session.url or "")


def create_invoice(provider: str, *, order_id: str, amount_micro: int) -> Invoice:
    return _nowpayments(order_id, amount_micro) if provider == "nowpayments" else _stripe(order_id, amount_micro)
