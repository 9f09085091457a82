"""Refunds: audited debits through the adjustment mechanics (negative balance allowed), in the
transaction that raises the top-up's refunded total when there is one, so the same refund is
never debited twice (an operator's refund first, the provider's event later, or the reverse)."""

from __future__ import annotations

from billing_core.kernel import money
from billing_core.kernel.context import Context
from billing_core.kernel.errors import Conflict, InvalidInput, NotFound
from billing_core.ledger import adjustments
from billing_core.ledger.model import DEFAULT_POOL, BalanceChanged
from billing_core.payments.model import RANKS
from billing_core.store import accounts, dynamo
from billing_core.store import payments as store


def refunded_status(total: int, credited: int) -> str:
    return "refunded" if total == credited else "partially_refunded"


def refund(ctx: Context, *, account_id: str, pool_id: str | None, amount: int, reason: str,
           order_id: str | None, idempotency_key: str | None) -> BalanceChanged:
    """An operator's refund. With an orderId it also counts against that top-up, so the
    provider's own refund event later debits nothing twice; it debits the pool the top-up
    credited (the deposit itself must not stay spendable in another pool)."""
    payment = store.get(order_id) if order_id is not None else None
    if payment is not None and payment.account_id != account_id:
        payment = None
    debited = payment.pool_id if payment is not None else pool_id or DEFAULT_POOL
    # The request as sent (the pool it named, if any) and the pool it debits, in one hash.
    request = {"amount": amount, "reason": reason, "orderId": order_id, "requestedPoolId": pool_id}
    original = adjustments.replay("refund", account_id=account_id, pool_id=debited,
                                  idempotency_key=idempotency_key, request=request)
    if original is not None:  # before the top-up's checks, which the first answer already used up
        return original
    if order_id is not None and payment is None:
        raise NotFound("no such top-up for this account", code="TOPUP_NOT_FOUND")
    if payment is not None and pool_id not in (None, payment.pool_id):
        raise InvalidInput(f"this top-up credited pool {payment.pool_id}; its refund debits that pool",
                           code="REFUND_POOL_MISMATCH", details={"poolId": payment.pool_id})
    extra: list[dynamo.Action] = [accounts.add_refunded(account_id, amount)]
    if payment is not None and order_id is not None:
        refundable = payment.credited_micro - payment.refunded_micro
        if amount > refundable:
            raise Conflict("refund exceeds what this top-up credited and has not been refunded",
                           code="REFUND_EXCEEDS_PAYMENT", details={"refundableMicro": money.fmt(refundable)})
        status = refunded_status(payment.refunded_micro + amount, payment.credited_micro)
        extra.append(store.refund(order_id, seen_refunded=payment.refunded_micro, delta=amount, status=status,
                                  rank=RANKS[status]))
    try:
        return adjustments.change_balance(
            ctx, account_id=account_id, pool_id=debited, target=None, delta=-amount, entry_type="refund",
            reason=reason, idempotency_key=idempotency_key, request=request, extra_actions=extra,
            refunded=amount, order_id=order_id)
    except dynamo.TransactionCancelled as cancelled:
        if "payment" in cancelled.failed:
            raise Conflict("the top-up's refunded total changed meanwhile; retry the request",
                           code="REFUND_CONFLICT") from None
        raise
