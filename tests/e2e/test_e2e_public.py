"""Public routes (pricing, the OpenAPI document), unknown routes, and every route API.md lists."""

from __future__ import annotations

import pytest

from tests.e2e.client import OPENAPI, PRICING, Caller, assert_error, assert_status

# Every route of ../shared/API.md's table that this release serves (path parameters filled in).
# Top-ups, webhooks and adjust (issue 3) and the /api/v1 plan and quota routes (issue 4) join this
# list when they are built; until then they are 404 ROUTE_NOT_FOUND, as docs/api.md says.
CONTRACT_ROUTES = [
    ("POST", "/api/internal/billing/reserve"),
    ("POST", "/api/internal/billing/finalize"),
    ("POST", "/api/internal/billing/release"),
    ("GET", "/api/billing/balance"),
    ("GET", "/api/billing/history"),
    ("GET", "/api/billing/pricing"),
    ("POST", "/admin/billing/accounts/acct-routes/mint"),
    ("PUT", "/admin/billing/config/mode"),
]
PUBLIC = {"/api/billing/pricing"}

# The routes the OpenAPI document must list (the ones docs/api.md says are served today).
SERVED = {
    "/api/internal/billing/reserve": "post",
    "/api/internal/billing/finalize": "post",
    "/api/internal/billing/release": "post",
    "/api/billing/balance": "get",
    "/api/billing/history": "get",
    "/api/billing/pricing": "get",
    "/admin/billing/accounts/{accountId}/mint": "post",
    "/admin/billing/config/mode": "put",
}


def test_pricing_needs_no_auth(api: Caller) -> None:
    api.set_mode("soft")
    body = assert_status(api.request("GET", PRICING), 200)
    assert body["billingMode"] == "soft", body
    assert isinstance(body["pools"], list) and body["pools"], body
    assert isinstance(body["rates"], list | dict) and body["rates"], body
    assert isinstance(body["tiers"], list | dict), body
    for rate in body["rates"] if isinstance(body["rates"], list) else []:
        for key, value in rate.items():
            if key.endswith("Micro"):
                assert isinstance(value, str) and value.isdigit(), rate


def test_openapi_document_lists_the_routes(api: Caller) -> None:
    response = api.request("GET", OPENAPI)
    document = assert_status(response, 200)
    assert response.headers["Content-Type"].startswith("application/json")
    assert str(document.get("openapi", "")).startswith("3."), document.get("openapi")
    assert document.get("info", {}).get("title"), document.get("info")
    paths = document["paths"]
    for path, method in SERVED.items():
        assert path in paths, sorted(paths)
        assert method in paths[path], (path, sorted(paths[path]))


@pytest.mark.parametrize(("method", "path"), CONTRACT_ROUTES, ids=[f"{m} {p}" for m, p in CONTRACT_ROUTES])
def test_every_contract_route_is_served(api: Caller, method: str, path: str) -> None:
    """Unauthenticated, each route answers its own way (401 for a protected route, 200 for a public
    one, a refused signature for a webhook), never 'no such route'."""
    response = api.request(method, path, json_body=None if method == "GET" else {})
    if response.status_code < 400:
        assert path in PUBLIC, f"{method} {path} answered {response.status_code} without auth"
        return
    error = assert_error(response, (400, 401, 403, 422))
    assert error["code"] != "ROUTE_NOT_FOUND"
    if path not in PUBLIC and "/webhooks/" not in path:
        assert response.status_code == 401, (method, path, response.status_code, error)


@pytest.mark.parametrize(("method", "path"), [("GET", "/api/billing/nope"), ("GET", "/nope"),
                                              ("GET", "/api/internal/billing/reserve"),
                                              ("DELETE", "/api/billing/balance")])
def test_unknown_routes_are_404_in_the_error_shape(api: Caller, method: str, path: str) -> None:
    assert_error(api.request(method, path), 404, "ROUTE_NOT_FOUND")
