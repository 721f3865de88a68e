"""PrivateID's Age API (``/v2/session``): not offered here, said plainly.

An integration written for PrivateID may call the age-estimation routes. This server
does not estimate age, so both routes answer 501 with the error envelope and a
sentence saying so, never a bare 404 "No such route" that looks like a wrong URL.
No credentials are checked: the answer is the same for everyone and reveals nothing.
"""

from __future__ import annotations

from fastapi import APIRouter

from bioverify.api.schemas import ErrorEnvelope
from bioverify.errors import NotOffered

router = APIRouter(tags=["age"])

MESSAGE = (
    "Age estimation (PrivateID's Age API, /v2/session) is not available on this "
    "server; it offers face enrolment, verification and sign-in through "
    "/v2/verification-session only"
)
_RESPONSES: dict[int | str, dict[str, object]] = {
    501: {"model": ErrorEnvelope, "description": "Age estimation is not offered."}
}


@router.post("/v2/session", status_code=501, responses=_RESPONSES, summary="Age API: not offered")
async def create_age_session() -> None:
    raise NotOffered(MESSAGE)


@router.get(
    "/v2/session/{sessionId}/result",
    status_code=501,
    responses=_RESPONSES,
    summary="Age API result: not offered",
)
async def age_result(sessionId: str) -> None:  # noqa: N803 - wire name
    del sessionId
    raise NotOffered(MESSAGE)


__all__ = ["MESSAGE", "router"]
