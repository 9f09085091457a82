"""Revenue distribution: on finalize (soft and live), each system account gets
floor(charged x bps / 10,000) of the consumed amount, with the basis points the reservation
carried from when it was made.

No item is written by every account's traffic: each share is an append into one of the system
account's shard partitions (store.keys.entry_pk), chosen by the reservation id.
"""

from __future__ import annotations

from billing_core.kernel import ids, money
from billing_core.ledger.model import Entry, Reservation


def shares(res: Reservation, charged: int, now_iso: str, actor: str) -> list[Entry]:
    out = []
    for account, bps in sorted(res.revenue_shares.items()):
        amount = money.share(charged, int(bps))
        if amount <= 0:
            continue
        out.append(Entry(
            account_id=account, pool_id="general",
            entry_type="commons_contribution" if account == ids.COMMONS_ACCOUNT else "revenue_share",
            amount=amount, entry_id=f"{res.reservation_id}:share:{account}", created_at=now_iso, actor=actor,
            description=f"{bps} bps of finalized spend", reservation_id=res.reservation_id,
            metadata={"fromAccountId": res.account_id, "basisPoints": int(bps), "finalizedMicro": charged},
            shard_seed=res.reservation_id))
    return out
