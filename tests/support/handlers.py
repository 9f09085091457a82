"""Handlers invoked in-process, without HTTP: API Gateway proxy events in, (status, body,
headers) out, as the Lambda service would call them. Whatever DynamoDB the core's client
reaches (the `aws` fixture's moto, or a fake store) serves them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from devserver.invoke import event, invoke, load_handler, reply


def handler_module(name: str) -> Any:
    return load_handler(name)


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def code(self) -> str | None:
        return (self.body.get("error") or {}).get("code")


class Api:
    """Invoke handlers in-process with API Gateway proxy events, as the Lambda service would."""

    def call(self, route: str, body: Any = None, *, token: str | None = None, query: dict | None = None,
             path: dict | None = None, raw_body: str | None = None, headers: dict | None = None) -> Reply:
        proxy = event(route, body, token=token, query=query, path=path, raw_body=raw_body, headers=headers)
        return Reply(*reply(invoke(route, proxy)))

    # Shortcuts used by most tests.
    def mint(self, account: str, amount: int | str, *, token: str, pool: str = "general", **extra: Any) -> Reply:
        body = {"amountMicro": str(amount), "poolId": pool, "sourceType": "deposit", "description": "test credit",
                **extra}
        return self.call("mint", body, token=token, path={"accountId": account})

    def set_mode(self, mode: str, *, token: str) -> Reply:
        return self.call("mode", {"mode": mode}, token=token)
