"""Provider signatures, checked on the raw body before anything is stored or trusted.

- Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]`, HMAC-SHA256 of "<t>.<body>" with
  the endpoint secret. The comparison is stripe's own (`WebhookSignature.verify_header`, constant
  time, any v1 may match); the timestamp window is ours, on billing_core.kernel.clock: older than
  300 s is stale (a replay), more than 300 s ahead is refused too.
- NOWPayments: `x-nowpayments-sig` = hex HMAC-SHA512 of the JSON body re-serialized with keys
  sorted (recursively), compact separators. Re-serializing needs a parse, done in memory only
  and keeping every number's exact text (floats are never materialized), so the bytes signed
  are the bytes the provider signed. Compared with hmac.compare_digest.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from billing_core.kernel import clock
from billing_core.kernel.errors import Unauthorized

STRIPE_TOLERANCE_SECONDS = 300


class InvalidSignature(Unauthorized):
    code = "INVALID_SIGNATURE"


class _Number(str):
    """A JSON number kept as its source text."""


def _canonical(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{_canonical(value[k])}"
                              for k in sorted(value)) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_canonical(v) for v in value) + "]"
    if isinstance(value, _Number):
        return str.__str__(value)
    return json.dumps(value, ensure_ascii=False)


def nowpayments_canonical(raw: bytes) -> str:
    parsed = json.loads(raw.decode("utf-8"), parse_float=_Number, parse_int=_Number,
                        parse_constant=lambda _: (_ for _ in ()).throw(ValueError("not JSON")))
    if not isinstance(parsed, dict):
        raise ValueError("an IPN body is a JSON object")
    return _canonical(parsed)


def nowpayments_signature(raw: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), nowpayments_canonical(raw).encode(), hashlib.sha512).hexdigest()


def verify_nowpayments(raw: bytes, signature: str | None, secret: str) -> None:
    if not secret:
        raise InvalidSignature("NOWPayments IPN secret is not configured", code="WEBHOOK_NOT_CONFIGURED")
    if not signature:
        raise InvalidSignature("missing x-nowpayments-sig header")
    try:
        expected = nowpayments_signature(raw, secret)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidSignature("signature does not match the body") from None
    if not hmac.compare_digest(expected, signature.strip().lower()):
        raise InvalidSignature("signature does not match the body")


def stripe_header(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The header Stripe would send (tests, local tools)."""
    from stripe import WebhookSignature

    ts = int(clock.now()) if timestamp is None else timestamp
    header: str = WebhookSignature.generate_signature_header(payload.decode("utf-8"), secret, timestamp=ts)
    return header


def verify_stripe(raw: bytes, header: str | None, secret: str) -> None:
    if not secret:
        raise InvalidSignature("Stripe webhook secret is not configured", code="WEBHOOK_NOT_CONFIGURED")
    from stripe import SignatureVerificationError, WebhookSignature

    try:
        payload = raw.decode("utf-8")
        WebhookSignature.verify_header(payload, header, secret, tolerance=None)
        timestamp, _ = WebhookSignature._get_timestamp_and_signatures(header or "", "v1")
    except (SignatureVerificationError, UnicodeDecodeError, ValueError, IndexError):
        raise InvalidSignature("signature does not match the body") from None
    now = clock.now()
    if timestamp < now - STRIPE_TOLERANCE_SECONDS:
        raise InvalidSignature("signature timestamp is too old (possible replay)", code="SIGNATURE_EXPIRED")
    if timestamp > now + STRIPE_TOLERANCE_SECONDS:
        raise InvalidSignature("signature timestamp is in the future", code="SIGNATURE_EXPIRED")
