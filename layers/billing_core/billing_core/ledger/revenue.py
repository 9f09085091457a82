"""Revenue distribution: on finalize (soft and live), each system account gets
floor(charged x bps / 10,000) of the consumed amount, with the basis points the reservation
carried from when it was made.

The distribution is a fact of the finalize itself: the finalize entry carries every system
account's share (`revenueShares`: account -> basisPoints, amountMicro), written in the same
transaction as the money, in the paying account's own partition. So no item is written by every
account's traffic (no hot key), and a finalize costs no write per system account; the
reconciler sums the shares from the finalize entries (and from the per-share entries that
deployments before this change wrote into the system accounts' shard partitions).
"""

from __future__ import annotations

from billing_core.kernel import money
from billing_core.ledger.model import Reservation


def distribution(res: Reservation, charged: int) -> dict[str, dict[str, int]]:
    """system account -> {basisPoints, amountMicro}; shares of zero are left out."""
    out = {}
    for account, bps in sorted(res.revenue_shares.items()):
        amount = money.share(charged, int(bps))
        if amount > 0:
            out[account] = {"basisPoints": int(bps), "amountMicro": amount}
    return out
