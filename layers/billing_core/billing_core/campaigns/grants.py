"""Campaigns: a budget that grants can never exceed, an optional cap per account, pause/resume.

A grant is ONE TransactWriteItems (lots.mint with extra actions): the lot, its ledger entry,
the pool's debt check, the campaign's budget update, the grantee's cap update, the idempotency
record and the caller's rate counter. The budget is enforced by the campaign update's own
condition (`#status = :active AND #rem >= :a`), never by a read: two grants racing for the last
of a budget cannot both pass it. DynamoDB conditions cannot add, so the campaign keeps
`remaining` (decremented) beside `granted` (incremented) in one balanced SET, and a grantee
keeps `capLeft` beside `granted` the same way.

Keys (BillingTable; candidates for keys.py):
  campaign  pk "CAMPAIGNS"          sk "CAMPAIGN#<campaignId>"  every campaign in one partition,
                                                                 so listing is one Query
  grantee   pk "CAMPAIGN#<id>"      sk "GRANTEE#<accountId>"     per-account total (and cap left)

The campaign item is written by every grant of that campaign: one campaign's grant rate is
bounded by one item's write rate (about 500 transactional grants/s). Grants are operator
actions (30/min per admin), so this hot item is accepted; it is never written by spending.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from billing_core.api.models.ledger import LotResponse
from billing_core.kernel import clock, money, settings
from billing_core.kernel.context import Context
from billing_core.kernel.errors import Conflict, InvalidInput, NotFound
from billing_core.ledger import idempotency, lots
from billing_core.store import dynamo, transaction

ACTIVE = "active"
PAUSED = "paused"
GRANT_IDEMPOTENCY_SCOPE = "campaign-grant"
_CAMPAIGNS_PK = "CAMPAIGNS"


# -- keys (private; may move to keys.py) -------------------------------------------------------


def _campaign_key(campaign_id: str) -> dict[str, str]:
    return {"pk": _CAMPAIGNS_PK, "sk": f"CAMPAIGN#{campaign_id}"}


def _grantee_key(campaign_id: str, account_id: str) -> dict[str, str]:
    return {"pk": f"CAMPAIGN#{campaign_id}", "sk": f"GRANTEE#{account_id}"}


def _grant_idempotency_key(campaign_id: str, key: str) -> str:
    """Idempotency keys are scoped to their campaign ('#' cannot occur in a campaign id)."""
    return f"{campaign_id}#{key}"


def _grant_id(campaign_id: str, key: str | None) -> str:
    """Deterministic for a keyed grant, so a replay reports the grant id of the original."""
    if key is None:
        return f"grant_{uuid.uuid4().hex}"
    return "grant_" + hashlib.sha256(_grant_idempotency_key(campaign_id, key).encode()).hexdigest()[:32]


# -- wire -----------------------------------------------------------------------------------------


def _to_wire(item: dict[str, Any]) -> dict[str, Any]:
    cap = item.get("perAccountCap")
    return {
        "campaignId": item["campaignId"],
        "name": item["name"],
        "description": item.get("description"),
        "status": item["status"],
        "budgetMicro": money.fmt(item["budget"]),
        "grantedMicro": money.fmt(item["granted"]),
        "remainingMicro": money.fmt(item["remaining"]),
        "perAccountCapMicro": money.fmt(cap) if cap is not None else None,
        "poolId": item["poolId"],
        "grantExpiresAt": item.get("grantExpiresAt"),
        "grantCount": item["grantCount"],
        "createdAt": item["createdAt"],
        "createdBy": item["createdBy"],
        "updatedAt": item["updatedAt"],
        "updatedBy": item["updatedBy"],
    }


def _not_found(campaign_id: str) -> NotFound:
    return NotFound(f"campaign {campaign_id} does not exist", code="CAMPAIGN_NOT_FOUND",
                    details={"campaignId": campaign_id})


def _load(campaign_id: str) -> dict[str, Any]:
    item = dynamo.get(settings.get().billing_table, _campaign_key(campaign_id))
    if item is None:
        raise _not_found(campaign_id)
    return item


# -- campaigns ------------------------------------------------------------------------------------


def create(
    ctx: Context,
    *,
    campaign_id: str | None,
    name: str,
    budget: int,
    per_account_cap: int | None,
    pool_id: str,
    grant_expires_at: str | None,
    description: str | None,
) -> dict[str, Any]:
    """One conditional Put (with the rate counter, in one transaction). The same campaignId
    with the same definition is an idempotent replay (the campaign as it is now); with another
    definition, 409 CAMPAIGN_EXISTS."""
    actor = ctx.actor
    now_iso = clock.iso(clock.now())
    if grant_expires_at is not None and grant_expires_at <= now_iso:
        raise InvalidInput("grantExpiresAt must be in the future", code="EXPIRY_IN_PAST")
    campaign_id = campaign_id or f"cmp_{uuid.uuid4().hex}"
    req_hash = idempotency.request_hash({
        "op": "create-campaign", "name": name, "budget": budget, "perAccountCap": per_account_cap,
        "poolId": pool_id, "grantExpiresAt": grant_expires_at, "description": description,
    })
    item = {
        **_campaign_key(campaign_id),
        "campaignId": campaign_id, "name": name, "description": description, "status": ACTIVE,
        "budget": budget, "granted": 0, "remaining": budget, "grantCount": 0,
        "perAccountCap": per_account_cap, "poolId": pool_id, "grantExpiresAt": grant_expires_at,
        "requestHash": req_hash, "createdAt": now_iso, "createdBy": actor, "updatedAt": now_iso, "updatedBy": actor,
    }
    action = dynamo.put(settings.get().billing_table, item, tag="campaign", condition="attribute_not_exists(pk)")
    try:
        transaction.commit([action], ctx)
    except dynamo.TransactionCancelled as cancelled:
        if "campaign" not in cancelled.failed:
            raise
        existing = _load(campaign_id)
        if existing.get("requestHash") != req_hash:
            raise Conflict(f"campaign {campaign_id} already exists with another definition",
                           code="CAMPAIGN_EXISTS", details={"campaignId": campaign_id}) from None
        return _to_wire(existing)
    return _to_wire({k: v for k, v in item.items() if v is not None})


def get(campaign_id: str) -> dict[str, Any]:
    return _to_wire(_load(campaign_id))


def list_campaigns() -> list[dict[str, Any]]:
    """Every campaign, ordered by id: one Query of the CAMPAIGNS partition."""
    items = dynamo.query_all(settings.get().billing_table, key_name="pk", key_value=_CAMPAIGNS_PK,
                             sort=dynamo.Range("begins_with", "sk", "CAMPAIGN#"), consistent=True)
    return [_to_wire(i) for i in items]


def _set_status(ctx: Context, campaign_id: str, to: str, from_: str) -> dict[str, Any]:
    """One conditional UpdateItem on the current status. Already in the target status: the
    campaign as it is (200, idempotent). The rate counter is charged first, so a request over
    the limit changes nothing."""
    if ctx.rate is not None:
        ctx.rate.charge_standalone()
    try:
        item = dynamo.update_item(
            settings.get().billing_table, _campaign_key(campaign_id),
            "SET #status = :to, updatedAt = :now, updatedBy = :by",
            condition="#status = :from", names={"#status": "status"},
            values={":to": to, ":from": from_, ":now": clock.iso(clock.now()), ":by": ctx.actor}, return_new=True,
        )
    except dynamo.ConditionFailed:
        current = _load(campaign_id)
        if current["status"] == to:
            return _to_wire(current)
        raise Conflict(f"campaign {campaign_id} is {current['status']}", code="CAMPAIGN_STATUS_CONFLICT",
                       details={"campaignId": campaign_id, "status": current["status"]}) from None
    assert item is not None
    return _to_wire(item)


def pause(ctx: Context, campaign_id: str) -> dict[str, Any]:
    return _set_status(ctx, campaign_id, PAUSED, ACTIVE)


def resume(ctx: Context, campaign_id: str) -> dict[str, Any]:
    return _set_status(ctx, campaign_id, ACTIVE, PAUSED)


# -- grants ---------------------------------------------------------------------------------------


def _budget_action(campaign_id: str, amount: int, now_iso: str) -> dynamo.Action:
    return dynamo.update(
        settings.get().billing_table, _campaign_key(campaign_id),
        "SET #rem = #rem - :a, #granted = #granted + :a, #count = #count + :one, lastGrantAt = :now",
        condition="#status = :active AND #rem >= :a",
        names={"#rem": "remaining", "#granted": "granted", "#count": "grantCount", "#status": "status"},
        values={":a": amount, ":one": 1, ":active": ACTIVE, ":now": now_iso}, tag="campaign",
    )


def _grantee_action(campaign_id: str, account_id: str, amount: int, cap: int | None, now_iso: str) -> dynamo.Action:
    expression = ("SET #granted = if_not_exists(#granted, :zero) + :a, #count = if_not_exists(#count, :zero) + :one, "
                  "accountId = :acct, campaignId = :cid, lastGrantAt = :now")
    names = {"#granted": "granted", "#count": "grantCount"}
    values: dict[str, Any] = {":a": amount, ":zero": 0, ":one": 1, ":acct": account_id, ":cid": campaign_id,
                              ":now": now_iso}
    condition = None
    if cap is not None:
        # capLeft starts at the cap with the account's first grant. A grant larger than the cap
        # gets a condition that can never hold (capLeft <= cap < amount), so it is refused by
        # the transaction like any other over-cap grant (and a keyed retry is still replayed).
        expression += ", #left = if_not_exists(#left, :cap) - :a"
        names["#left"] = "capLeft"
        values[":cap"] = cap
        condition = "attribute_not_exists(#left) OR #left >= :a" if amount <= cap else "#left >= :a"
    return dynamo.update(settings.get().billing_table, _grantee_key(campaign_id, account_id), expression,
                         condition=condition, names=names, values=values, tag="grantee")


def grant(
    ctx: Context,
    campaign_id: str,
    *,
    account_id: str,
    amount: int,
    idempotency_key: str | None,
    description: str | None,
) -> dict[str, Any]:
    """Mint a lot of the campaign's pool (expiring at its grantExpiresAt) to an account, inside
    one transaction with the campaign's budget and the account's cap.

    Calls: GetItem campaign (pool, expiry, cap) · GetItem debt (lots.mint) · TransactWriteItems
    · GetItem campaign (remainingMicro after the grant).
    """
    campaign = _load(campaign_id)
    now_iso = clock.iso(clock.now())
    grant_id = _grant_id(campaign_id, idempotency_key)
    cap = campaign.get("perAccountCap")
    try:
        lot = lots.mint(
            ctx,
            account_id=account_id,
            pool_id=campaign["poolId"],
            amount=amount,
            source_type="campaign",
            description=description or f"campaign grant: {campaign['name']}",
            expires_at=campaign.get("grantExpiresAt"),
            idempotency_key=_grant_idempotency_key(campaign_id, idempotency_key) if idempotency_key else None,
            entry_metadata={"campaignId": campaign_id, "grantId": grant_id},
            extra_actions=[
                _budget_action(campaign_id, amount, now_iso),
                _grantee_action(campaign_id, account_id, amount, cap, now_iso),
            ],
            idempotency_scope=GRANT_IDEMPOTENCY_SCOPE,
        )
    except InvalidInput as exc:
        if exc.code == "EXPIRY_IN_PAST":
            raise Conflict(f"grants of campaign {campaign_id} expired at {campaign.get('grantExpiresAt')}",
                           code="CAMPAIGN_EXPIRED",
                           details={"campaignId": campaign_id, "grantExpiresAt": campaign.get("grantExpiresAt")},
                           ) from None
        raise
    except dynamo.TransactionCancelled as cancelled:
        # lots.mint has already answered a replay (its idempotency record failed): what is left
        # is a real refusal. Read what refused it, for the details.
        raise _refusal(cancelled, campaign_id, account_id, amount, cap) from None
    after = dynamo.get(settings.get().billing_table, _campaign_key(campaign_id)) or campaign
    return {
        "grantId": grant_id,
        "campaignId": campaign_id,
        "accountId": account_id,
        "amountMicro": money.fmt(amount),
        "remainingMicro": money.fmt(after["remaining"]),
        "lotId": lot.lot_id,
        "lot": LotResponse.of(lot),
    }


def _refusal(cancelled: dynamo.TransactionCancelled, campaign_id: str, account_id: str, amount: int,
             cap: int | None) -> Exception:
    if "campaign" in cancelled.failed:
        current = dynamo.get(settings.get().billing_table, _campaign_key(campaign_id))
        if current is None:
            return _not_found(campaign_id)
        if current["status"] != ACTIVE:
            return Conflict(f"campaign {campaign_id} is {current['status']}; it grants nothing",
                            code="CAMPAIGN_NOT_ACTIVE",
                            details={"campaignId": campaign_id, "status": current["status"]})
        return Conflict(
            f"campaign {campaign_id} has {current['remaining']} micro-units of budget left; {amount} were requested",
            code="CAMPAIGN_BUDGET_EXHAUSTED",
            details={"campaignId": campaign_id, "budgetMicro": money.fmt(current["budget"]),
                     "remainingMicro": money.fmt(current["remaining"]), "requestedMicro": money.fmt(amount)},
        )
    if "grantee" in cancelled.failed and cap is not None:
        grantee = dynamo.get(settings.get().billing_table, _grantee_key(campaign_id, account_id)) or {}
        granted = grantee.get("granted", 0)
        return Conflict(
            f"account {account_id} may receive at most {cap} micro-units from campaign {campaign_id}",
            code="ACCOUNT_CAP_EXCEEDED",
            details={"campaignId": campaign_id, "accountId": account_id, "perAccountCapMicro": money.fmt(cap),
                     "grantedMicro": money.fmt(granted), "capLeftMicro": money.fmt(grantee.get("capLeft", cap)),
                     "requestedMicro": money.fmt(amount)},
        )
    return cancelled


# -- for the reconciler and the runbook -----------------------------------------------------------


def budget_usage() -> list[dict[str, Any]]:
    """Each active campaign's spend, for the 'campaign budget > 90% spent' alarm: usedBps is
    floor(granted * 10,000 / budget). Integers only; one Query."""
    out = []
    for item in dynamo.query_all(settings.get().billing_table, key_name="pk", key_value=_CAMPAIGNS_PK,
                             sort=dynamo.Range("begins_with", "sk", "CAMPAIGN#"), consistent=True):
        if item["status"] != ACTIVE:
            continue
        out.append({"campaignId": item["campaignId"], "budgetMicro": item["budget"], "grantedMicro": item["granted"],
                    "usedBps": item["granted"] * 10_000 // item["budget"]})
    return out


def audit(campaign_id: str) -> dict[str, Any]:
    """The runbook's 'review grants' for one campaign, from the items themselves: the campaign's
    own figures must balance (granted + remaining == budget), and the per-account totals must
    add up to what the campaign says it granted. Two Queries' worth of reads."""
    campaign = _load(campaign_id)
    grantees = dynamo.query_all(settings.get().billing_table, key_name="pk", key_value=f"CAMPAIGN#{campaign_id}",
                                 sort=dynamo.Range("begins_with", "sk", "GRANTEE#"), consistent=True)
    by_accounts = sum(g.get("granted", 0) for g in grantees)
    grants_by_accounts = sum(g.get("grantCount", 0) for g in grantees)
    problems = []
    if campaign["granted"] + campaign["remaining"] != campaign["budget"]:
        problems.append("granted + remaining != budget")
    if campaign["remaining"] < 0:
        problems.append("remaining < 0")
    if by_accounts != campaign["granted"]:
        problems.append("sum of per-account grants != granted")
    if grants_by_accounts != campaign["grantCount"]:
        problems.append("sum of per-account grant counts != grantCount")
    cap = campaign.get("perAccountCap")
    if cap is not None and any(g.get("granted", 0) > cap for g in grantees):
        problems.append("an account received more than the per-account cap")
    return {
        "campaignId": campaign_id, "budgetMicro": campaign["budget"], "grantedMicro": campaign["granted"],
        "remainingMicro": campaign["remaining"], "grantCount": campaign["grantCount"],
        "accountsGrantedMicro": by_accounts, "accounts": len(grantees), "ok": not problems, "problems": problems,
    }
