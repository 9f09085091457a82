"""API Gateway, locally: SAM CLI's own LocalApigwService over our worker-pool Lambda runner.

`sam local start-api` needs Docker, which these machines lack, but its API Gateway emulation
(routes from the template via ApiProvider, proxy event construction, response parsing) does
not: only its Lambda runner does. So this module builds the routes exactly as SAM CLI does and
hands LocalApigwService a `WorkerPoolRunner` in place of the Docker-based runner. That leans on
SAM CLI internals, hence the pinned version.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from devserver.template import DEFAULT_TEMPLATE, load_stacks, load_template, quiet_sam

SAM_CLI_VERSION = "1.170.0"


class SamCliVersionError(RuntimeError):
    """SAM CLI is not the version this module drives."""


def check_sam_cli_version() -> None:
    import samcli

    if samcli.__version__ != SAM_CLI_VERSION:
        raise SamCliVersionError(
            f"devserver drives SAM CLI {SAM_CLI_VERSION} internals (LocalApigwService, ApiProvider) "
            f"but {samcli.__version__} is installed; install aws-sam-cli=={SAM_CLI_VERSION}"
        )


def build_api(template: str | Path = DEFAULT_TEMPLATE) -> Any:
    """SAM CLI's Api (routes, stage, binary types) for the template; no hand-kept route table."""
    check_sam_cli_version()
    from samcli.lib.providers.api_provider import ApiProvider

    template = Path(template)
    stacks = load_stacks(template)
    with quiet_sam():
        return ApiProvider(stacks, cwd=str(template.parent)).api


class Gateway:
    """Serves the template's API on host:port (0 = free port) on a background thread."""

    def __init__(
        self,
        runner: Any,
        template: str | Path = DEFAULT_TEMPLATE,
        *,
        host: str = "127.0.0.1",
        port: int = 3000,
    ) -> None:
        check_sam_cli_version()
        self.runner = runner
        self.template = Path(template)
        self.host = host
        self.requested_port = port
        self.api = build_api(self.template)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def routes(self) -> list[tuple[str, str, str]]:
        """(method, path, function logical id) for every route."""
        return sorted(
            (method, route.path, route.function_name) for route in self.api.routes for method in route.methods
        )

    def start(self) -> Gateway:
        from samcli.local.apigw.local_apigw_service import LocalApigwService
        from werkzeug.serving import make_server

        if not self.api.routes:
            raise RuntimeError(f"no API routes in {self.template}")
        service = LocalApigwService(
            api=self.api, lambda_runner=self.runner, port=self.requested_port, host=self.host
        )
        service.create()
        self._serve_gateway_responses(service._app)
        # LocalApigwService.run() would block in Flask's dev server and install its own SIGTERM
        # handler; serving its app ourselves lets the caller own the signals and the shutdown.
        self._server = make_server(self.host, self.requested_port, service._app, threaded=True)
        service.port = self._server.server_port  # the events' Host/port when we asked for port 0
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="devserver-gateway", daemon=True
        )
        self._thread.start()
        return self

    def _serve_gateway_responses(self, app: Any) -> None:
        """Unknown routes get the template's MISSING_AUTHENTICATION_TOKEN gateway response (as on
        AWS) instead of SAM CLI's built-in 403 body."""
        from flask import Response

        api = next((r for r in (load_template(self.template).get("Resources") or {}).values()
                    if r.get("Type") == "AWS::Serverless::Api"), {})
        configured = (api.get("Properties") or {}).get("GatewayResponses") or {}
        missing = configured.get("MISSING_AUTHENTICATION_TOKEN")
        if not missing:
            return
        status = int(missing.get("StatusCode", 403))
        body = (missing.get("ResponseTemplates") or {}).get("application/json", "{}")

        def route_not_found(*_: Any) -> Any:
            return Response(body, status=status, mimetype="application/json")

        app.register_error_handler(404, route_not_found)
        app.register_error_handler(405, route_not_found)

        @app.before_request
        def refuse_non_utf8_body() -> Any:
            # SAM CLI decodes bodies as UTF-8 before building the event and answers 502 when it
            # cannot; JSON is UTF-8 by definition, so answer what the handler would: 400.
            from flask import request

            try:
                request.get_data(cache=True).decode("utf-8")
            except UnicodeDecodeError:
                error = {"code": "INVALID_JSON", "message": "request body is not valid UTF-8 JSON", "details": {}}
                return Response(json.dumps({"error": error}), status=400, mimetype="application/json")
            return None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("gateway not started")
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
