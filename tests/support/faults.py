"""A random workload over HTTP for the fault suite (test_e2e_faults.py), and the caller's own
model of what it was answered: the money every account should hold and the ledger entries its
history should show, each exactly once.

The driver is a careful caller: every money move carries its ids (reservationId, mint and adjust
idempotencyKey, the provider's payment id), so a 502 (a Lambda that died after its write) is
retried with the same request until it is answered. Every other 5xx is recorded as a failure.
Where no 502 can happen, a third of the mints and adjustments go without a key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests

from devserver.testing import StackProcess

TIMEOUT = 60
MODES_BY_PHASE = ("live", "soft", "shadow", "live")
CRASH_RETRIES = 8


@dataclass
class Account:
    account_id: str
    credits: int = 0  # acknowledged mints and credited top-ups
    charged: int = 0  # finalizedMicro of acknowledged soft/live finalizes
    adjusted: int = 0  # newBalance - previousBalance of acknowledged adjustments
    pending: dict[str, int] = field(default_factory=dict)  # reservationId -> estimate
    expected: Counter[tuple[str, str]] = field(default_factory=Counter)  # (entryType, key) -> 1


@dataclass
class Figures:
    requests: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    by_route: Counter[str] = field(default_factory=Counter)
    retried_502: int = 0
    failures: list[str] = field(default_factory=list)  # unexpected answers (5xx above all)


class Workload:
    def __init__(self, stack: StackProcess, seed: int, *, accounts: int = 3, crash_allowed: bool = False) -> None:
        self.stack = stack
        self.rng = random.Random(seed)
        self.http = requests.Session()
        self.crash_allowed = crash_allowed
        tag = uuid.uuid4().hex[:8]
        self.service = f"svc-faults-{tag}"
        self.admin = f"ops-faults-{tag}"
        self.accounts = [Account(f"acct-faults-{tag}-{i}") for i in range(accounts)]
        self.figures = Figures()
        self.mode = "shadow"
        self.counter = 0
        self._modes: dict[str, str] = {}  # reservationId -> the mode it was made in

    # -- HTTP ------------------------------------------------------------------------------------

    def _token(self, kind: str, subject: str | None = None) -> str:
        subject = subject or {"internal": self.service, "admin": self.admin}[kind]
        return self.stack.token(kind, subject)

    def send(self, route: str, method: str, path: str, *, body: Any = None, token: str | None = None,
             raw: str | None = None, headers: dict[str, str] | None = None,
             params: dict[str, Any] | None = None) -> requests.Response:
        """One request; a 502 is retried with the very same request (when crashes are injected)."""
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        for attempt in range(CRASH_RETRIES + 1):
            self.figures.requests += 1
            self.figures.by_route[route] += 1
            response = self.http.request(method, self.stack.url + path, data=data, headers=all_headers,
                                         params=params, timeout=TIMEOUT)
            self.figures.by_status[response.status_code] += 1
            if response.status_code == 502 and self.crash_allowed and attempt < CRASH_RETRIES:
                self.figures.retried_502 += 1
                continue
            if response.status_code >= 500:
                self.figures.failures.append(f"{route} {method} {path} -> {response.status_code} {response.text[:300]}")
            return response
        raise AssertionError("unreachable")

    def _keyed(self) -> bool:
        """Mints and adjustments carry a key when a 502 may have to be retried; otherwise a third
        go without one (the service must still apply each exactly once under lost answers)."""
        return self.crash_allowed or self.rng.random() < 0.67

    def _fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}-{uuid.uuid4().hex[:6]}"

    # -- operations ------------------------------------------------------------------------------

    def set_mode(self, mode: str) -> None:
        response = self.send("mode", "PUT", "/admin/billing/config/mode", body={"mode": mode},
                             token=self._token("admin"))
        assert response.status_code == 200, response.text
        self.mode = mode

    def mint(self, acct: Account) -> None:
        amount = self.rng.choice((50_000, 200_000, 1_000_000))
        body = {"amountMicro": str(amount), "sourceType": "deposit", "description": "fault suite credit"}
        if self._keyed():
            body["idempotencyKey"] = self._fresh("mint")
        response = self.send("mint", "POST", f"/admin/billing/accounts/{acct.account_id}/mint", body=body,
                             token=self._token("admin"))
        if response.status_code == 201:
            acct.credits += amount
            acct.expected[("deposit", response.json()["lotId"])] += 1
        elif response.status_code < 500:
            self.figures.failures.append(f"mint answered {response.status_code}: {response.text[:200]}")

    def reserve(self, acct: Account) -> None:
        rid = self._fresh("res")
        estimate = self.rng.choice((1_000, 20_000, 90_000, 400_000))
        ttl = 1 if self.rng.random() < 0.15 else 300
        body = {"accountId": acct.account_id, "estimatedCostMicro": str(estimate), "reservationId": rid,
                "ttlSeconds": ttl}
        response = self.send("reserve", "POST", "/api/internal/billing/reserve", body=body,
                             token=self._token("internal"))
        if response.status_code == 201:
            got = response.json()
            assert got["reservationId"] == rid, got
            acct.pending[rid] = estimate
            acct.expected[(self._typed("reserve", got["billingMode"]), rid)] += 1
            self._modes[rid] = got["billingMode"]
        elif response.status_code != 402:
            self._unexpected("reserve", response)

    @staticmethod
    def _typed(base: str, mode: str) -> str:
        return f"shadow_{base}" if mode == "shadow" else base

    def _unexpected(self, what: str, response: requests.Response) -> None:
        if response.status_code < 500:  # 5xx were recorded by send()
            self.figures.failures.append(f"{what} answered {response.status_code}: {response.text[:200]}")

    def _settled(self, acct: Account, rid: str, response: requests.Response, base: str) -> None:
        """A finalize or release answer: 200 settles it; 409 RESERVATION_EXPIRED means it expired."""
        mode = self._modes[rid]
        if response.status_code == 200:
            acct.pending.pop(rid)
            acct.expected[(self._typed(base, mode), rid)] += 1
            if base == "finalize" and mode != "shadow":
                acct.charged += int(response.json()["finalizedMicro"])
        elif response.status_code == 409 and response.json()["error"]["code"] == "RESERVATION_EXPIRED":
            acct.pending.pop(rid)
            acct.expected[(self._typed("expire", mode), rid)] += 1
        else:
            self._unexpected(base, response)

    def finalize(self, acct: Account) -> None:
        if not acct.pending:
            return self.reserve(acct)
        rid = self.rng.choice(sorted(acct.pending))
        actual = max(0, int(acct.pending[rid] * self.rng.choice((0.0, 0.5, 1.0, 1.3))))
        response = self.send("finalize", "POST", "/api/internal/billing/finalize",
                             body={"reservationId": rid, "actualCostMicro": str(actual)}, token=self._token("internal"))
        self._settled(acct, rid, response, "finalize")
        return None

    def release(self, acct: Account, rid: str | None = None) -> None:
        if rid is None:
            if not acct.pending:
                return self.reserve(acct)
            rid = self.rng.choice(sorted(acct.pending))
        response = self.send("release", "POST", "/api/internal/billing/release", body={"reservationId": rid},
                             token=self._token("internal"))
        self._settled(acct, rid, response, "release")
        return None

    def adjust(self, acct: Account) -> None:
        body: dict[str, Any] = {"reason": "fault suite"}
        if self._keyed():
            body["idempotencyKey"] = self._fresh("adj")
        if self.rng.random() < 0.5:
            body["deltaMicro"] = str(self.rng.choice((-30_000, -5_000, 10_000, 75_000)))
        else:
            body["balanceMicro"] = str(self.rng.choice((0, 150_000, 2_000_000)))
        response = self.send("adjust", "POST", f"/admin/billing/accounts/{acct.account_id}/adjust", body=body,
                             token=self._token("admin"))
        if response.status_code == 200:
            got = response.json()
            acct.adjusted += int(got["newBalanceMicro"]) - int(got["previousBalanceMicro"])
            acct.expected[("adjustment", got["entryId"])] += 1
        else:
            self._unexpected("adjust", response)

    def topup(self, acct: Account) -> None:
        amount = self.rng.choice((1_000_000, 3_000_000))
        created = self.send("topup", "POST", "/api/billing/topups",
                            body={"amountMicro": str(amount), "provider": "nowpayments"},
                            token=self._token("user", acct.account_id))
        if created.status_code != 201:
            return self._unexpected("topup", created)
        order_id = created.json()["orderId"]
        ipn = {"payment_id": int(time.time_ns() % 10**12) + self.counter, "payment_status": "finished",
               "price_amount": amount / 1_000_000, "price_currency": "usd", "pay_currency": "btc",
               "actually_paid": 0.00012345, "order_id": order_id}
        raw = json.dumps(ipn)
        secret = self.stack.secrets["NOWPAYMENTS_IPN_SECRET"]
        signature = hmac.new(secret.encode(), json.dumps(ipn, sort_keys=True, separators=(",", ":")).encode(),
                             hashlib.sha512).hexdigest()
        for _ in range(2):  # the provider redelivers: credited once
            response = self.send("webhook", "POST", "/api/billing/webhooks/nowpayments", raw=raw,
                                 headers={"x-nowpayments-sig": signature})
            if response.status_code != 200:
                self._unexpected("webhook", response)
        got = self.send("topup", "GET", f"/api/billing/topups/{order_id}", token=self._token("user", acct.account_id))
        if got.status_code == 200 and got.json()["status"] == "finished":
            acct.credits += int(got.json()["creditedMicro"])
            acct.expected[("deposit", f"order:{order_id}")] += 1
        else:
            self._unexpected("topup status", got)
        return None

    def read(self, acct: Account) -> None:
        token = self._token("user", acct.account_id)
        route, path = self.rng.choice((("balance", "/api/billing/balance"), ("history", "/api/billing/history")))
        response = self.send(route, "GET", path, token=token)
        if response.status_code != 200:
            self._unexpected(route, response)

    # -- the run ---------------------------------------------------------------------------------

    def run(self, ops_per_phase: int) -> None:
        weights = {self.reserve: 30, self.finalize: 25, self.release: 8, self.mint: 10, self.adjust: 6,
                   self.topup: 4, self.read: 8}
        choices, cumulative = list(weights), list(weights.values())
        for mode in MODES_BY_PHASE:
            self.set_mode(mode)
            for acct in self.accounts:  # every phase starts with some credit
                self.mint(acct)
            for _ in range(ops_per_phase):
                acct = self.rng.choice(self.accounts)
                op = self.rng.choices(choices, weights=cumulative)[0]
                op(acct)
        time.sleep(1.5)  # let the 1-second reservations run out
        for acct in self.accounts:
            for rid in sorted(acct.pending):
                self.release(acct, rid)  # 200 released, or 409 RESERVATION_EXPIRED
        self.set_mode("live")

    # -- what the service says now ----------------------------------------------------------------

    def history(self, acct: Account) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 100}
        token = self._token("user", acct.account_id)
        while True:
            response = self.send("history", "GET", "/api/billing/history", token=token, params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            entries += page["entries"]
            if not page["pagination"]["hasMore"]:
                return entries
            params = {"limit": 100, "cursor": page["pagination"]["nextCursor"]}

    @staticmethod
    def entry_key(entry: dict[str, Any]) -> tuple[str, str]:
        kind = entry["entryType"]
        if kind == "deposit":
            order = (entry.get("metadata") or {}).get("orderId")
            return kind, f"order:{order}" if order else entry["lotId"]
        if kind == "adjustment":
            return kind, entry["entryId"]
        return kind, entry.get("reservationId") or entry["entryId"]

    def balance(self, acct: Account) -> int:
        response = self.send("balance", "GET", "/api/billing/balance", token=self._token("user", acct.account_id))
        assert response.status_code == 200, response.text
        return int(response.json()["totalAvailableMicro"])


FAULT_LINE = re.compile(r"injected fault: (\w+) on (\w+)")


def injected(log: str) -> Counter[str]:
    """Faults the stack logged, per kind."""
    return Counter(match.group(1) for match in FAULT_LINE.finditer(log))
