"""Public routes (pricing, the OpenAPI document), unknown routes, and every route API.md lists."""

from __future__ import annotations

import pytest

from tests.support.http import OPENAPI, PRICING, Caller, assert_error, assert_status

# Every route of ../shared/API.md's table (path parameters filled in), then the project's own.
CONTRACT_ROUTES = [
    ("POST", "/api/internal/billing/reserve"),
    ("POST", "/api/internal/billing/finalize"),
    ("POST", "/api/internal/billing/release"),
    ("GET", "/api/billing/balance"),
    ("GET", "/api/billing/history"),
    ("GET", "/api/billing/pricing"),
    ("POST", "/admin/billing/accounts/acct-routes/mint"),
    ("PUT", "/admin/billing/config/mode"),
    ("POST", "/api/billing/topups"),
    ("POST", "/api/billing/webhooks/nowpayments"),
    ("POST", "/api/billing/webhooks/stripe"),
    ("POST", "/admin/billing/accounts/acct-routes/adjust"),
    ("GET", "/api/v1/billing/plans"),
    ("GET", "/api/v1/billing/org/summary"),
    ("POST", "/api/v1/billing/org/plan"),
    ("POST", "/api/v1/billing/org/check"),
    ("POST", "/api/v1/billing/org/usage"),
    # The project's own operator routes (docs/api.md, docs/campaigns.md).
    ("POST", "/admin/billing/accounts/acct-routes/refund"),
    ("GET", "/admin/billing/dlq"),
    ("POST", "/admin/billing/dlq/wk_x/replay"),
    ("GET", "/admin/billing/reconciliation"),
    ("POST", "/admin/billing/reconcile"),
    ("GET", "/admin/billing/campaigns"),
    ("PUT", "/admin/billing/config/revenue-shares"),
]
PUBLIC = {"/api/billing/pricing", "/api/v1/billing/plans"}

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
    "/api/billing/topups": "post",
    "/api/billing/webhooks/nowpayments": "post",
    "/api/billing/webhooks/stripe": "post",
    "/admin/billing/accounts/{accountId}/adjust": "post",
    "/admin/billing/accounts/{accountId}/refund": "post",
    "/admin/billing/dlq": "get",
    "/admin/billing/campaigns": "post",
    "/api/v1/billing/plans": "get",
    "/api/v1/billing/org/summary": "get",
    "/api/v1/billing/org/plan": "post",
    "/api/v1/billing/org/check": "post",
    "/api/v1/billing/org/usage": "post",
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
