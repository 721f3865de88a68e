"""Run by ``test_client_distribution`` with the python of a fresh virtualenv that holds
only the ``bioverify-client`` wheel: it must import and work without the server.

Reads one JSON request on stdin and prints one JSON answer (no pytest here).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from bioverify_client import Client, PermanentError, verify_receipt, verify_webhook


def create(sdk: Client, args: dict[str, Any]) -> dict[str, Any]:
    session = sdk.create_session(
        type="ENROLL", liveness="passive", callback_url=args["callback"], transaction_id="fresh"
    )
    try:
        sdk.create_session(type="ENROLL", session_expiry=5)  # under 60 s: 400, not retried
    except PermanentError as exc:
        refused = {"status": exc.status, "message": exc.message}
    return {"sessionId": session.session_id, "launchUrl": session.launch_url, "refused": refused}


def check(sdk: Client, args: dict[str, Any]) -> dict[str, Any]:
    body = args["body"].encode()
    payload = verify_webhook(body, args["headers"], args["webhookSecret"])
    jwks = sdk.jwks()
    verify_webhook(body, args["headers"], jwks)  # v1a
    checkpoint = sdk.audit_checkpoint()
    entry = sdk.audit_entry(payload["audit"]["index"])
    verify_receipt(payload, entry, jwks, checkpoint.key_name, checkpoint.origin)
    final = sdk.wait_for_result(payload["sessionId"], timeout=10)
    outcome = final.outcome()
    return {
        "status": final.status,
        "transactionID": final.transaction_id,
        "outcome": type(outcome).__name__,
        "code": getattr(outcome, "code", None),
        "retryWithNewSession": outcome.should_retry_with_new_session if outcome else None,
    }


def main() -> None:
    args = json.load(sys.stdin)
    with Client(
        args["url"],
        api_key=args["apiKey"],
        client_id=args["clientId"],
        client_secret=args["clientSecret"],
    ) as sdk:
        answer = create(sdk, args) if args["step"] == "create" else check(sdk, args)
    sys.stdout.write(json.dumps(answer))


if __name__ == "__main__":
    main()
