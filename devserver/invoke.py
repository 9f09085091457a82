"""In-process invocation of the template's handlers with API Gateway REST proxy events.

The one place that builds proxy events and loads handler modules, for the tests, the benchmark
and the sample events. Routes are the template's Api events, named by their event key
lower-cased (`Mint` -> "mint"): no hand-kept route table. Nothing here imports the billing core,
so a spawned worker can set its environment before the core loads.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devserver.template import DEFAULT_TEMPLATE, REPO_ROOT, load_template


@dataclass(frozen=True)
class Route:
    name: str
    function_id: str  # template logical id, e.g. "AdminFunction"
    code_dir: str  # functions/<code_dir>/app.py
    method: str
    path: str  # with {params}


@functools.cache
def routes(template: str | Path = DEFAULT_TEMPLATE) -> dict[str, Route]:
    found: dict[str, Route] = {}
    for logical_id, resource in (load_template(template).get("Resources") or {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties") or {}
        for event_name, event in (props.get("Events") or {}).items():
            if event.get("Type") != "Api":
                continue
            found[event_name.lower()] = Route(
                name=event_name.lower(), function_id=logical_id, code_dir=Path(props["CodeUri"]).name,
                method=event["Properties"]["Method"].upper(), path=event["Properties"]["Path"],
            )
    return found


def proxy_event(method: str, resource: str, *, body: Any = None, raw_body: str | None = None,
                token: str | None = None, query: dict[str, str] | None = None,
                path: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """A REST API proxy event, as API Gateway hands it to the function."""
    concrete = resource
    for name, value in (path or {}).items():
        concrete = concrete.replace("{" + name + "}", value)
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    return {
        "resource": resource, "path": concrete, "httpMethod": method, "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": path, "stageVariables": None,
        "requestContext": {"requestId": uuid.uuid4().hex, "stage": "v1", "httpMethod": method,
                           "resourcePath": resource, "path": concrete, "identity": {"sourceIp": "127.0.0.1"}},
        "body": raw_body if raw_body is not None else (json.dumps(body) if body is not None else None),
        "isBase64Encoded": False,
    }


def event(route: str, body: Any = None, **kwargs: Any) -> dict[str, Any]:
    """The proxy event for one of the template's routes by name ("reserve", "mint", ...)."""
    r = routes()[route]
    return proxy_event(r.method, r.path, body=body, **kwargs)


@dataclass
class LambdaContext:
    function_name: str = "local-function"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:local-function"
    aws_request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def load_module(path: Path, name: str) -> Any:
    """Import one file as module `name` (once: a loaded name is reused). Every handler is
    app.py, so each needs a name of its own."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_handler(code_dir: str) -> Any:
    """functions/<code_dir>/app.py as a module."""
    return load_module(REPO_ROOT / "functions" / code_dir / "app.py", f"handler_{code_dir}")


def invoke(route: str, proxy: dict[str, Any]) -> dict[str, Any]:
    """Run the route's handler on a proxy event in this process; returns the proxy response."""
    return load_handler(routes()[route].code_dir).lambda_handler(proxy, LambdaContext())


def reply(result: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, parsed body, headers) of a proxy response; API Gateway merges both header maps."""
    body = json.loads(result["body"]) if result.get("body") else {}
    headers = {name: values[-1] for name, values in (result.get("multiValueHeaders") or {}).items() if values}
    headers.update(result.get("headers") or {})
    return result["statusCode"], body, headers
