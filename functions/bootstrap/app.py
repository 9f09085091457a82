"""CloudFormation custom resource: seed config and system accounts on Create and Update.

Hand-written response call (urllib) because Powertools has no custom-resource helper and the
cfnresponse module only exists for inline ZipFile code; it is a single signed-URL PUT.
"""

import json
import urllib.request
from typing import Any

from billing_core.kernel.observability import logger
from billing_core.ledger import bootstrap


def _respond(event: dict[str, Any], context: Any, status: str, data: dict[str, str], reason: str = "") -> None:
    body = json.dumps({
        "Status": status,
        "Reason": reason or f"see log stream {getattr(context, 'log_stream_name', '')}",
        "PhysicalResourceId": event.get("PhysicalResourceId") or "billing-bootstrap",
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "Data": data,
    }).encode()
    request = urllib.request.Request(  # noqa: S310 - the URL is CloudFormation's presigned S3 URL
        event["ResponseURL"], data=body, method="PUT", headers={"Content-Type": ""}
    )
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310
        pass


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        data = {} if event.get("RequestType") == "Delete" else {
            k: ",".join(v) for k, v in bootstrap.seed().items()
        }
        logger.info("bootstrap done", extra={"seed": data})  # "created" is a LogRecord field
        status, reason = "SUCCESS", ""
    except Exception as exc:
        logger.exception("bootstrap failed")
        data, status, reason = {}, "FAILED", type(exc).__name__
    if event.get("ResponseURL"):
        _respond(event, context, status, data, reason)
    return {"Status": status, "Data": data}
