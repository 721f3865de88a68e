"""SQL errors never carry their bound parameters into messages or logs (review item 14)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

SECRET = "bvs_do-not-log-this-value"


def test_sql_errors_hide_bound_parameters(db_engine: Engine) -> None:
    with pytest.raises(DBAPIError) as info, db_engine.connect() as conn:
        conn.execute(text("SELECT * FROM no_such_table WHERE x = :value"), {"value": SECRET})
    assert "no_such_table" in str(info.value)  # the error itself is still useful
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)
