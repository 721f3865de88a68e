"""Pure rules of PrivateID round 2: customer ids, the redirect, the risk policy."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bioverify import errors
from bioverify.domain import redirect, risk
from bioverify.domain.customer_id import customer_id_problem, is_valid_customer_id


@pytest.mark.parametrize(
    "value", ["jane doe+1@example.com", "a/b/c", "Zoë", "用户", "🙂", "x" * 128, " padded "]
)
def test_printable_customer_ids_are_accepted(value: str) -> None:
    assert customer_id_problem(value) is None


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("", "1 to 128"),
        ("x" * 129, "1 to 128"),
        ("   ", "only spaces"),
        ("a\tb", "U+0009"),
        ("a\u2028b", "U+2028"),
        ("a\x85b", "U+0085"),
    ],
)
def test_refused_customer_ids_say_why(value: str, why: str) -> None:
    problem = customer_id_problem(value)
    assert problem is not None and why in problem


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Zl", "Zp", "Cs")), min_size=1))
def test_any_printable_text_up_to_128_characters_is_an_id(value: str) -> None:
    assert is_valid_customer_id(value) == (len(value) <= 128 and bool(value.strip()))


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=8).filter(
            lambda k: k not in {"sessionId", "status", "reason"}
        ),
        st.text(max_size=8),
        max_size=4,
    )
)
def test_redirect_keeps_the_urls_parameters_and_adds_the_outcome(params: dict[str, str]) -> None:
    url = (
        f"https://app.example.com/done?{urlencode(params)}"
        if params
        else "https://app.example.com/done"
    )
    target = redirect.with_outcome(url, session_id="s-1", status="FAILED", reason="FACE_NOT_MATCH")
    query = parse_qs(urlsplit(target).query, keep_blank_values=True)
    assert {k: v[0] for k, v in query.items() if k in params} == params
    assert query["sessionId"] == ["s-1"] and query["status"] == ["FAILED"]
    assert query["reason"] == ["FACE_NOT_MATCH"]


def test_redirect_reason_is_success_or_the_deciding_codes_name() -> None:
    assert redirect.reason_for("SUCCESS", None) == "success"
    assert redirect.reason_for("FAILED", errors.FACE_NOT_MATCH) == "FACE_NOT_MATCH"
    assert redirect.reason_for("FAILED", -13) == "SESSION_EXPIRED"  # the legacy alias


def _level(**evidence: object) -> tuple[str, str]:
    out = risk.evaluate(risk.Evidence(**evidence))  # type: ignore[arg-type]
    return out["level"], out["recommendation"]


def test_a_clean_success_is_low_allow() -> None:
    assert _level(failed=False) == ("LOW", "ALLOW")


@pytest.mark.parametrize(
    "codes",
    [
        [errors.FACE_NOT_MATCH],
        [errors.MULTIPLE_FACES],
        [errors.CAMERA_FAIL],
        [errors.SESSION_EXPIRED],
    ],
)
def test_a_failed_session_is_never_allow(codes: list[int]) -> None:
    assert _level(failed=True, codes=codes)[1] == "DENY"


@given(
    failed=st.booleans(),
    automation=st.booleans(),
    virtual_camera=st.booleans(),
    anomalies=st.booleans(),
    spoof=st.booleans(),
    duplicate=st.booleans(),
)
def test_policy_invariants(  # noqa: PLR0917 - one argument per hypothesis strategy
    failed: bool,
    automation: bool,
    virtual_camera: bool,
    anomalies: bool,
    spoof: bool,
    duplicate: bool,
) -> None:
    level, recommendation = _level(
        failed=failed or spoof,
        codes=[errors.SPOOF] if spoof else [],
        automation=automation,
        virtual_camera=virtual_camera,
        anomalies=anomalies,
        match_flags=["DUPLICATE_ENROLMENT"] if duplicate else [],
    )
    if failed or spoof:
        assert recommendation == "DENY"
    if automation or virtual_camera:
        assert level in {"MEDIUM", "HIGH"} and recommendation in {"REVIEW", "DENY"}
    if spoof and (automation or virtual_camera):
        assert (level, recommendation) == ("HIGH", "DENY")
