"""GET /api/billing/openapi.json - the OpenAPI document generated from every handler's routes.

Each function owns its routes, so no single Lambda holds them all at run time; the document is
generated at build time by `make openapi` (scripts/generate_openapi.py), which includes every
handler's Powertools router into one resolver. A test fails when it is out of date.
"""

import json
from pathlib import Path
from typing import Any

_DOCUMENT = (Path(__file__).parent / "openapi.json").read_text()


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    json.loads(_DOCUMENT)  # never serve a corrupt document
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json", "Cache-Control": "public, max-age=300"},
        "body": _DOCUMENT,
        "isBase64Encoded": False,
    }
