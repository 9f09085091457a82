"""Campaign items (BillingTable `CAMPAIGNS` / `CAMPAIGN#<id>`: every campaign in one partition, so
listing is one Query) and grantee items (`CAMPAIGN#<id>` / `GRANTEE#<account>`: one account's
total, and its cap left).

DynamoDB conditions cannot add, so the campaign keeps `remaining` (decremented) beside `granted`
(incremented) in one balanced SET, and the budget is enforced by the update's own condition
(`#status = :active AND #rem >= :a`), never by a read. A grantee keeps `capLeft` beside `granted`
the same way. The campaign item is written by every grant of that campaign (about 500
transactional grants/s at most); grants are operator actions, so this hot item is accepted.
"""

from __future__ import annotations

from typing import Any

from billing_core.campaigns.model import ACTIVE, Campaign, Grantee
from billing_core.kernel import settings
from billing_core.store import dynamo, keys


def _table() -> str:
    return settings.get().billing_table


def from_item(item: dict[str, Any]) -> Campaign:
    return Campaign(
        campaign_id=item["campaignId"], name=item["name"], description=item.get("description"),
        status=item["status"], budget_micro=item["budget"], granted_micro=item["granted"],
        remaining_micro=item["remaining"], per_account_cap_micro=item.get("perAccountCap"), pool_id=item["poolId"],
        grant_expires_at=item.get("grantExpiresAt"), grant_count=item["grantCount"], created_at=item["createdAt"],
        created_by=item["createdBy"], updated_at=item["updatedAt"], updated_by=item["updatedBy"],
        request_hash=item.get("requestHash"),
    )


def _grantee(item: dict[str, Any]) -> Grantee:
    return Grantee(account_id=item.get("accountId", ""), granted_micro=item.get("granted", 0),
                   grant_count=item.get("grantCount", 0), cap_left_micro=item.get("capLeft"))


# -- reads ----------------------------------------------------------------------------------------


def get(campaign_id: str) -> Campaign | None:
    item = dynamo.get(_table(), keys.campaign_key(campaign_id))
    return from_item(item) if item else None


def list_all() -> list[Campaign]:
    """Every campaign, ordered by id: one Query of the CAMPAIGNS partition."""
    items = dynamo.query_all(_table(), key_name="pk", key_value=keys.CAMPAIGNS_PK,
                             sort=dynamo.Range("begins_with", "sk", keys.CAMPAIGN_PREFIX), consistent=True)
    return [from_item(i) for i in items]


def grantee(campaign_id: str, account_id: str) -> Grantee | None:
    item = dynamo.get(_table(), keys.grantee_key(campaign_id, account_id))
    return _grantee(item) if item else None


def grantees(campaign_id: str) -> list[Grantee]:
    """Every account's total from one campaign: one Query of the campaign's partition."""
    items = dynamo.query_all(_table(), key_name="pk", key_value=keys.campaign_pk(campaign_id),
                             sort=dynamo.Range("begins_with", "sk", keys.GRANTEE_PREFIX), consistent=True)
    return [_grantee(i) for i in items]


# -- writes ---------------------------------------------------------------------------------------


def create(campaign: Campaign) -> dynamo.Action:
    """A new campaign (absent attributes stay absent: None is never stored)."""
    c = campaign
    item = {
        **keys.campaign_key(c.campaign_id),
        "campaignId": c.campaign_id, "name": c.name, "description": c.description, "status": c.status,
        "budget": c.budget_micro, "granted": c.granted_micro, "remaining": c.remaining_micro,
        "grantCount": c.grant_count, "perAccountCap": c.per_account_cap_micro, "poolId": c.pool_id,
        "grantExpiresAt": c.grant_expires_at, "requestHash": c.request_hash, "createdAt": c.created_at,
        "createdBy": c.created_by, "updatedAt": c.updated_at, "updatedBy": c.updated_by,
    }
    return dynamo.put(_table(), item, tag="campaign", condition="attribute_not_exists(pk)")


def set_status(campaign_id: str, to: str, from_: str, *, at: str, by: str) -> Campaign:
    """One conditional UpdateItem on the current status; dynamo.ConditionFailed when it is not `from_`."""
    item = dynamo.update_item(
        _table(), keys.campaign_key(campaign_id),
        "SET #status = :to, updatedAt = :now, updatedBy = :by",
        condition="#status = :from", names={"#status": "status"},
        values={":to": to, ":from": from_, ":now": at, ":by": by}, return_new=True,
    )
    assert item is not None
    return from_item(item)


def spend(campaign_id: str, amount: int, now_iso: str) -> dynamo.Action:
    """Budget -> granted, only while the campaign is active and has `amount` left."""
    return dynamo.update(
        _table(), keys.campaign_key(campaign_id),
        "SET #rem = #rem - :a, #granted = #granted + :a, #count = #count + :one, lastGrantAt = :now",
        condition="#status = :active AND #rem >= :a",
        names={"#rem": "remaining", "#granted": "granted", "#count": "grantCount", "#status": "status"},
        values={":a": amount, ":one": 1, ":active": ACTIVE, ":now": now_iso}, tag="campaign",
    )


def add_grantee(campaign_id: str, account_id: str, amount: int, cap: int | None, now_iso: str) -> dynamo.Action:
    """The account's total grows by `amount`; with a cap, only while its cap left covers it."""
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
    return dynamo.update(_table(), keys.grantee_key(campaign_id, account_id), expression,
                         condition=condition, names=names, values=values, tag="grantee")
