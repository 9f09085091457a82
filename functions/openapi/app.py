"""GET /api/billing/openapi.json - the OpenAPI document of every route the template serves.

Each function owns its routes, so no single Lambda holds them all at run time; the document is
assembled at build time by `make openapi` (scripts/generate_openapi.py) from the template's
functions, and `make test` fails when the committed or the served copy is stale.
"""

import json
from functools import cache
from pathlib import Path

from aws_lambda_powertools.event_handler import Response
from billing_core.api import edge

router = edge.router()
DOCUMENT = Path(__file__).parent / "openapi.json"


@cache
def _document() -> str:
    text = DOCUMENT.read_text()
    json.loads(text)  # never serve a corrupt document
    return text


@router.get(
    "/api/billing/openapi.json",
    summary="This OpenAPI document",
    tags=["public"],
    responses=edge.responses(None, schema={"type": "object", "required": ["openapi", "info", "paths"]},
                             description="The OpenAPI 3.1 document clients are generated from"),
)
def openapi() -> Response[str]:
    return Response(status_code=200, content_type="application/json", body=_document(),
                    headers={"Cache-Control": "public, max-age=300"})


lambda_handler = edge.handler(router, auth_kind=None)
