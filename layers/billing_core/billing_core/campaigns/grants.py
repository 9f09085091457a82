"""Grants: credit from a campaign's budget, minted as a lot in the campaign's pool.

A grant is ONE TransactWriteItems (lots.mint with extra actions): the lot, its ledger entry, the
pool's debt check, the campaign's budget update, the grantee's cap update, the idempotency
record and the caller's rate counter. The budget and the cap are enforced by those updates' own
conditions (store/campaigns.py), never by a read: two grants racing for the last of a budget
cannot both pass it. A refusal is read back afterwards only to say which limit refused it.
"""

from __future__ import annotations

import hashlib
import uuid

from billing_core.campaigns.budget import load, not_found
from billing_core.campaigns.model import ACTIVE, Granted
from billing_core.kernel import clock, money
from billing_core.kernel.context import Context
from billing_core.kernel.errors import Conflict, InvalidInput
from billing_core.ledger import lots
from billing_core.store import campaigns as store
from billing_core.store import dynamo, keys

GRANT_IDEMPOTENCY_SCOPE = "campaign-grant"


def _grant_id(campaign_id: str, key: str | None) -> str:
    """Deterministic for a keyed grant, so a replay reports the grant id of the original."""
    if key is None:
        return f"grant_{uuid.uuid4().hex}"
    return "grant_" + hashlib.sha256(keys.scoped(campaign_id, key).encode()).hexdigest()[:32]


def grant(
    ctx: Context,
    campaign_id: str,
    *,
    account_id: str,
    amount: int,
    idempotency_key: str | None,
    description: str | None,
) -> Granted:
    """Mint a lot of the campaign's pool (expiring at its grantExpiresAt) to an account, inside
    one transaction with the campaign's budget and the account's cap. Idempotency keys are
    scoped to their campaign.

    Calls: GetItem campaign (pool, expiry, cap) · GetItem debt (lots.mint) · TransactWriteItems
    · GetItem campaign (remainingMicro after the grant).
    """
    campaign = load(campaign_id)
    now_iso = clock.iso(clock.now())
    grant_id = _grant_id(campaign_id, idempotency_key)
    cap = campaign.per_account_cap_micro
    try:
        lot = lots.mint(
            ctx,
            account_id=account_id,
            pool_id=campaign.pool_id,
            amount=amount,
            source_type="campaign",
            description=description or f"campaign grant: {campaign.name}",
            expires_at=campaign.grant_expires_at,
            idempotency_key=keys.scoped(campaign_id, idempotency_key) if idempotency_key else None,
            entry_metadata={"campaignId": campaign_id, "grantId": grant_id},
            extra_actions=[
                store.spend(campaign_id, amount, now_iso),
                store.add_grantee(campaign_id, account_id, amount, cap, now_iso),
            ],
            idempotency_scope=GRANT_IDEMPOTENCY_SCOPE,
        )
    except InvalidInput as exc:
        if exc.code == "EXPIRY_IN_PAST":
            raise Conflict(f"grants of campaign {campaign_id} expired at {campaign.grant_expires_at}",
                           code="CAMPAIGN_EXPIRED",
                           details={"campaignId": campaign_id, "grantExpiresAt": campaign.grant_expires_at},
                           ) from None
        raise
    except dynamo.TransactionCancelled as cancelled:
        # lots.mint has already answered a replay (its idempotency record failed): what is left
        # is a real refusal. Read what refused it, for the details.
        raise _refusal(cancelled, campaign_id, account_id, amount, cap) from None
    after = store.get(campaign_id) or campaign
    return Granted(grant_id=grant_id, campaign_id=campaign_id, account_id=account_id, amount_micro=amount,
                   remaining_micro=after.remaining_micro, lot_id=lot.lot_id, lot=lot)


def _refusal(cancelled: dynamo.TransactionCancelled, campaign_id: str, account_id: str, amount: int,
             cap: int | None) -> Exception:
    if "campaign" in cancelled.failed:
        current = store.get(campaign_id)
        if current is None:
            return not_found(campaign_id)
        if current.status != ACTIVE:
            return Conflict(f"campaign {campaign_id} is {current.status}; it grants nothing",
                            code="CAMPAIGN_NOT_ACTIVE", details={"campaignId": campaign_id, "status": current.status})
        return Conflict(
            f"campaign {campaign_id} has {current.remaining_micro} micro-units of budget left; {amount} were requested",
            code="CAMPAIGN_BUDGET_EXHAUSTED",
            details={"campaignId": campaign_id, "budgetMicro": money.fmt(current.budget_micro),
                     "remainingMicro": money.fmt(current.remaining_micro), "requestedMicro": money.fmt(amount)},
        )
    if "grantee" in cancelled.failed and cap is not None:
        grantee = store.grantee(campaign_id, account_id)
        granted = grantee.granted_micro if grantee else 0
        cap_left = cap if grantee is None or grantee.cap_left_micro is None else grantee.cap_left_micro
        return Conflict(
            f"account {account_id} may receive at most {cap} micro-units from campaign {campaign_id}",
            code="ACCOUNT_CAP_EXCEEDED",
            details={"campaignId": campaign_id, "accountId": account_id, "perAccountCapMicro": money.fmt(cap),
                     "grantedMicro": money.fmt(granted), "capLeftMicro": money.fmt(cap_left),
                     "requestedMicro": money.fmt(amount)},
        )
    return cancelled

