"""Operator routes for outbound event webhooks: register an endpoint (its signing secret is shown
once), list, read, disable, enable, delete, rotate the secret; and an account's low-balance
threshold (balance.low)."""

from aws_lambda_powertools.event_handler import Response
from billing_core.api import contract, edge
from billing_core.api.models.outbound import (
    BalanceAlertRequest,
    BalanceAlertResponse,
    CreateEndpointRequest,
    EndpointDeletedResponse,
    EndpointListResponse,
    EndpointResponse,
    EndpointSecretResponse,
)
from billing_core.kernel.errors import Conflict, InvalidInput, NotFound
from billing_core.outbound import endpoints

router = edge.router()

NOT_FOUND: contract.Refusals = {NotFound: ("WEBHOOK_ENDPOINT_NOT_FOUND",)}

ENDPOINTS = "/admin/billing/webhook-endpoints"
ENDPOINT = "/admin/billing/webhook-endpoints/<endpointId>"
ALERT = "/admin/billing/accounts/<accountId>/balance-alert"


@router.post(
    ENDPOINTS,
    summary="Register a webhook endpoint",
    description="Events (topup.credited, balance.low, quota.threshold, reservation.expired, work.parked) are "
    "POSTed to the URL, signed per Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature). The "
    "answer carries the signing secret (whsec_...): it is shown this once. The URL must be https and public "
    "(422 WEBHOOK_URL_REFUSED otherwise).",
    tags=["admin"],
    responses=edge.responses(EndpointSecretResponse, 201, {
        InvalidInput: ("WEBHOOK_URL_REFUSED", "INVALID_EVENT_TYPES"), Conflict: ("TOO_MANY_ENDPOINTS",)}),
)
def create(request: CreateEndpointRequest, ctx: edge.Ctx) -> Response[EndpointSecretResponse]:
    result = endpoints.create(ctx, url=request.url, events=list(request.events), description=request.description)
    return edge.reply(EndpointSecretResponse, result, 201)


@router.get(ENDPOINTS, summary="List webhook endpoints", description="Without their secrets.", tags=["admin"],
            responses=edge.responses(EndpointListResponse))
def list_all() -> Response[EndpointListResponse]:
    return edge.reply(EndpointListResponse, {"endpoints": endpoints.listing()})


@router.get(ENDPOINT, summary="Read a webhook endpoint", tags=["admin"],
            responses=edge.responses(EndpointResponse, 200, NOT_FOUND))
def get(endpointId: edge.PathId) -> Response[EndpointResponse]:
    return edge.reply(EndpointResponse, endpoints.get(endpointId))


@router.post(
    f"{ENDPOINT}/disable",
    summary="Disable a webhook endpoint",
    description="No new event is sent to it; its pending deliveries end unsent (result reason endpoint_disabled).",
    tags=["admin"],
    responses=edge.responses(EndpointResponse, 200, NOT_FOUND),
)
def disable(endpointId: edge.PathId, ctx: edge.Ctx) -> Response[EndpointResponse]:
    return edge.reply(EndpointResponse, endpoints.set_enabled(ctx, endpointId, False))


@router.post(f"{ENDPOINT}/enable", summary="Enable a webhook endpoint again", tags=["admin"],
             responses=edge.responses(EndpointResponse, 200, NOT_FOUND))
def enable(endpointId: edge.PathId, ctx: edge.Ctx) -> Response[EndpointResponse]:
    return edge.reply(EndpointResponse, endpoints.set_enabled(ctx, endpointId, True))


@router.post(
    f"{ENDPOINT}/rotate-secret",
    summary="Rotate a webhook endpoint's signing secret",
    description="A new secret, shown this once. For 24 hours the previous secret signs too (a second "
    "signature in webhook-signature), so the receiver can switch without missing a delivery.",
    tags=["admin"],
    responses=edge.responses(EndpointSecretResponse, 200, {**NOT_FOUND, Conflict: ("WEBHOOK_ENDPOINT_CHANGED",)}),
)
def rotate(endpointId: edge.PathId, ctx: edge.Ctx) -> Response[EndpointSecretResponse]:
    return edge.reply(EndpointSecretResponse, endpoints.rotate(ctx, endpointId))


@router.delete(ENDPOINT, summary="Delete a webhook endpoint", tags=["admin"],
               responses=edge.responses(EndpointDeletedResponse, 200, NOT_FOUND))
def delete(endpointId: edge.PathId, ctx: edge.Ctx) -> Response[EndpointDeletedResponse]:
    return edge.reply(EndpointDeletedResponse, endpoints.delete(ctx, endpointId))


@router.get(ALERT, summary="An account's low-balance threshold", tags=["admin"],
            responses=edge.responses(BalanceAlertResponse))
def balance_alert(accountId: edge.PathId) -> Response[BalanceAlertResponse]:
    return edge.reply(BalanceAlertResponse, endpoints.balance_alert(accountId))


@router.put(
    ALERT,
    summary="Set an account's low-balance threshold",
    description="balance.low is sent once each time a pool's available credit falls below it. 0 turns it off "
    "for the account; null returns to the configured default (BILLING_LOW_BALANCE_MICRO).",
    tags=["admin"],
    responses=edge.responses(BalanceAlertResponse),
)
def set_balance_alert(accountId: edge.PathId, request: BalanceAlertRequest,
                      ctx: edge.Ctx) -> Response[BalanceAlertResponse]:
    return edge.reply(BalanceAlertResponse, endpoints.set_balance_alert(ctx, accountId, request.lowBalanceMicro))


lambda_handler = edge.handler(router, auth_kind="admin")
