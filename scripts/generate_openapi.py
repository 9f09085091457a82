"""Generate functions/openapi/openapi.json from the template's functions.

Every function with an Api event in template.yaml is loaded and its edge resolver documents its
own routes (responses, errors and security included, billing_core.api.contract); Powertools'
OpenAPIMerge joins them. No hand-kept list: a function added to the template is documented, and
a template route that no handler documents is an error.

Usage: python scripts/generate_openapi.py [--check]
--check exits 1 when the committed document differs from what the handlers generate.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "functions" / "openapi" / "openapi.json"
TITLE = "Credit billing API"
VERSION = "1.0.0"
DESCRIPTION = (
    "Reserve -> finalize credit ledger, plans and quotas, top-ups and operator routes. Amounts are decimal "
    "strings of micro-units (1 USD = 1,000,000). Every refusal is `{\"error\": {\"code\", \"message\", "
    "\"details\"}}` with a stable code; each response lists the codes it can carry. Integers (and amounts "
    "sent as numbers) are JSON integers written without a fraction or an exponent: `5`, never `5.0` or `5e0`."
)


def _environment() -> None:
    sys.path[:0] = [str(ROOT / "layers" / "billing_core"), str(ROOT)]
    # A handler checks at import that it has its caller's secret; documenting it verifies no token.
    for name in ("BILLING_INTERNAL_JWT_SECRET", "BILLING_ADMIN_JWT_SECRET", "BILLING_USER_JWT_SECRET"):
        os.environ.setdefault(name, "openapi-generator-never-verifies-a-token")
    os.environ.pop("BILLING_CEILING_MICRO", None)  # the document describes the default ceiling


def build_document() -> dict[str, Any]:
    _environment()
    from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge
    from billing_core.api import contract, edge

    from devserver.invoke import load_handler, routes

    merge = OpenAPIMerge(title=TITLE, version=VERSION, description=DESCRIPTION,
                         security_schemes=contract.SECURITY_SCHEMES, on_conflict="error")  # type: ignore[arg-type]
    template_routes = routes()
    for code_dir in sorted({route.code_dir for route in template_routes.values()}):
        entry = load_handler(code_dir).lambda_handler
        if not isinstance(entry, edge.LambdaHandler):
            raise SystemExit(f"functions/{code_dir}: its routes are not served through billing_core.api.edge.handler")
        resolver = entry.documented()
        merge.add_schema(resolver.get_openapi_schema(title=TITLE, version=VERSION,
                                                     security_schemes=contract.SECURITY_SCHEMES))
    document = contract.finish(json.loads(merge.get_openapi_json_schema()))
    documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    missing = sorted({(r.method, r.path) for r in template_routes.values()} - documented)
    if missing:
        raise SystemExit(f"template routes without documentation: {missing}")
    return document


def build() -> str:
    return json.dumps(build_document(), indent=2, sort_keys=True) + "\n"


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
