"""``GET`` / ``DELETE /v2/customers/{customerId}``: enrolment status and crypto-erasure.

Customer ids may hold any printable character, ``/`` included: clients URL-encode
them (``jane%2Fdoe``), and the route takes the rest of the path as the id, so an
encoded slash that the server decodes before routing still names one customer.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from bioverify.accounts.models import Client
from bioverify.api.deps import integrator, services
from bioverify.api.schemas import ERROR_RESPONSES, CustomerView
from bioverify.domain.customer_id import is_valid_customer_id
from bioverify.errors import NotFound
from bioverify.sessions import views
from bioverify.sessions.biometrics import Biometrics
from bioverify.storage.database import checkpoint_wal, transaction

router = APIRouter(tags=["customers"])


def _check_customer_id(customer_id: str) -> None:
    """An id that could never have been enrolled is unknown (and never reaches the store)."""
    if not is_valid_customer_id(customer_id):
        raise NotFound("No enrolled customer with that id for this client")


def _biometrics(request: Request) -> Biometrics:
    return services(request).need_biometrics()


@router.get(
    "/v2/customers/{customerId:path}",
    response_model=CustomerView,
    responses=ERROR_RESPONSES,
    summary="Enrolment status (never template data)",
)
async def get_customer(
    request: Request,
    customerId: str,  # noqa: N803 - wire name
    client: Annotated[Client, Depends(integrator)],
) -> dict[str, Any]:
    svc = services(request)
    biometrics = _biometrics(request)
    _check_customer_id(customerId)

    def read() -> dict[str, Any]:
        with transaction(svc.factory) as db:
            enrolment = biometrics.enrolment(db, client.id, customerId)
            if enrolment is None:
                raise NotFound(f"No enrolled customer {customerId} for this client")
            return {
                "customerId": customerId,
                "enrolled": True,
                "puid": enrolment.puid,
                "guid": enrolment.guid,
                "enrolledAt": views.rfc3339(enrolment.enrolled_at),
                "deviceBound": enrolment.device_hash is not None,
                "modelVersion": enrolment.model_version,
            }

    return await run_in_threadpool(read)


@router.delete(
    "/v2/customers/{customerId:path}",
    status_code=204,
    responses=ERROR_RESPONSES,
    summary="Erase the customer's template and device binding at once",
)
async def delete_customer(
    request: Request,
    customerId: str,  # noqa: N803 - wire name
    client: Annotated[Client, Depends(integrator)],
) -> Response:
    svc = services(request)
    biometrics = _biometrics(request)
    _check_customer_id(customerId)

    def erase() -> None:
        sessions = svc.need_sessions()
        with transaction(svc.factory) as db:
            # What identity documents said about the customer goes with the template.
            documents = sessions.vault.erase(db, client.id, customerId)
            if not biometrics.erase(db, client.id, customerId) and not documents:
                raise NotFound(f"No enrolled customer {customerId} for this client")
            sessions.effects.customer_erased(db, client.id, customerId)

    await run_in_threadpool(erase)
    # The erased rows' old pages must not outlive them in SQLite's WAL.
    await run_in_threadpool(checkpoint_wal, svc.db_engine)
    return Response(status_code=204)


__all__ = ["router"]
