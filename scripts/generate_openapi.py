"""Generate functions/openapi/openapi.json from every handler's Powertools router.

Usage: python scripts/generate_openapi.py [--check]
--check exits 1 when the committed document differs from what the handlers generate.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "functions" / "openapi" / "openapi.json"
HANDLERS = [
    "reserve", "finalize", "release", "balance", "history", "pricing", "admin", "topups", "webhooks", "operations",
    "campaigns", "plans", "org_summary", "org_plan", "quota", "webhook_endpoints",
]


def build() -> str:
    sys.path[:0] = [str(ROOT / "layers" / "billing_core"), str(ROOT)]
    # A handler checks at import that it has its caller's secret; documenting it verifies no token.
    for name in ("BILLING_INTERNAL_JWT_SECRET", "BILLING_ADMIN_JWT_SECRET", "BILLING_USER_JWT_SECRET"):
        os.environ.setdefault(name, "openapi-generator-never-verifies-a-token")
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver

    from devserver.invoke import load_handler

    app = APIGatewayRestResolver(enable_validation=True)
    for name in HANDLERS:
        app.include_router(load_handler(name).router)
    document = app.get_openapi_json_schema(
        title="Credit billing API",
        version="1.0.0",
        description="Reserve -> finalize credit ledger. Amounts are decimal strings of micro-units.",
    )
    return json.dumps(json.loads(document), indent=2, sort_keys=True) + "\n"


def main() -> int:
    document = build()
    if "--check" in sys.argv:
        if not OUTPUT.exists() or OUTPUT.read_text() != document:
            print("functions/openapi/openapi.json is out of date: run `make openapi`", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(document)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
