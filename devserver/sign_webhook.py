"""Sign a webhook body the way the provider would, with the local stack's secret, so a curl can
play NOWPayments or Stripe against `make run`:

    python -m devserver.sign_webhook nowpayments '<json body>'   # prints the x-nowpayments-sig value
    python -m devserver.sign_webhook stripe '<json body>'        # prints a Stripe-Signature value (now)

The secret is NOWPAYMENTS_IPN_SECRET / STRIPE_WEBHOOK_SECRET from the environment, else the
dev-only default the stack uses. The signature schemes are the core's own (billing_core.payments.signatures).
"""

from __future__ import annotations

import sys
from pathlib import Path

from devserver.tokens import dev_secrets


def sign(provider: str, body: str) -> str:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "layers" / "billing_core"))
    from billing_core.payments import signatures as webhook_signatures

    secrets = dev_secrets()
    if provider == "nowpayments":
        return webhook_signatures.nowpayments_signature(body.encode(), secrets["NOWPAYMENTS_IPN_SECRET"])
    if provider == "stripe":
        return webhook_signatures.stripe_header(body.encode(), secrets["STRIPE_WEBHOOK_SECRET"])
    raise SystemExit(f"unknown provider {provider!r}: nowpayments or stripe")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    print(sign(argv[0], argv[1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
