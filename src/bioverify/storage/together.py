"""Two single-row INSERTs of one transaction in one round trip on PostgreSQL.

A create-session writes its session row and its audit queue entry back to back;
on PostgreSQL each statement is a round trip to the server (and a wake-up of the
request's thread), a fifth of the create's. A data-modifying CTE
(``WITH first AS (INSERT ...) INSERT ... RETURNING``) runs both as one statement:
the same rows, the same transaction, the same constraint checks (a duplicate key
in either still raises :class:`~sqlalchemy.exc.IntegrityError`). SQLite has no
data-modifying CTEs and no round trips (it runs in process): there the two
statements run one after the other, as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy import Column, Connection, CursorResult, Insert, Table, bindparam, insert
from sqlalchemy.orm import Session

#: Prefixes of the bound parameters of the two inserts (their columns may share names).
_FIRST: Final = "first_"
_THEN: Final = "then_"

#: A row to insert: its table and its column values.
Row = tuple[Table, Mapping[str, Any]]

_Key = tuple[str, tuple[str, ...], str, tuple[str, ...], str]
#: Built statements by (tables, columns given, returned column); a handful in practice.
_COMBINED: dict[_Key, Insert] = {}
#: The plain statements (SQLite) by table, and by (table, returned column).
_PLAIN: dict[str, Insert] = {}
_RETURNING: dict[tuple[str, str], Insert] = {}


def _values(table: Table, columns: tuple[str, ...], prefix: str) -> dict[str, Any]:
    return {name: bindparam(prefix + name, type_=table.c[name].type) for name in columns}


def _with_defaults(table: Table, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` plus the Python-side defaults of the columns not given.

    SQLAlchemy leaves them unset in a statement with a data-modifying CTE (measured:
    the second INSERT's defaults stayed NULL), so they are filled here, as a plain
    INSERT would have. Only scalar and argument-less callable defaults exist here.
    """
    full = dict(values)
    for column in table.columns:
        default = column.default
        if column.key in full or default is None:
            continue
        if default.is_scalar:
            full[column.key] = default.arg  # type: ignore[attr-defined]
        elif default.is_callable:
            full[column.key] = default.arg(None)  # type: ignore[attr-defined]
        else:  # a SQL expression or a sequence: not expressible as a bound value
            raise TypeError(f"{table.name}.{column.key}: only Python defaults are supported")
    return full


def _combined(key: _Key, first: Table, then: Table, returning: Column[Any]) -> Insert:
    stmt = _COMBINED.get(key)
    if stmt is None:
        leading = insert(first).values(_values(first, key[1], _FIRST)).cte("first_insert")
        stmt = (
            insert(then).values(_values(then, key[3], _THEN)).returning(returning).add_cte(leading)
        )
        _COMBINED[key] = stmt
    return stmt


def insert_both(
    db: Session | Connection, leading: Row, following: Row, *, returning: Column[Any]
) -> Any:
    """INSERT the row ``leading`` (a table and its values), then ``following``, in
    ``db``'s transaction; the ``returning`` column of the second row."""
    (first, first_values), (then, then_values) = leading, following
    dialect = db.dialect if isinstance(db, Connection) else db.get_bind().dialect
    if dialect.name != "postgresql":
        plain = _PLAIN.get(first.name)
        if plain is None:
            plain = _PLAIN[first.name] = insert(first)
        db.execute(plain, dict(first_values))
        returns = _RETURNING.get((then.name, returning.key))
        if returns is None:
            returns = _RETURNING[then.name, returning.key] = insert(then).returning(returning)
        result: CursorResult[Any] = db.execute(returns, dict(then_values))  # type: ignore[assignment]
        return result.scalar_one()
    first_values, then_values = (
        _with_defaults(first, first_values),
        _with_defaults(then, then_values),
    )
    key: _Key = (first.name, tuple(first_values), then.name, tuple(then_values), returning.key)
    params = {_FIRST + name: value for name, value in first_values.items()}
    params.update((_THEN + name, value) for name, value in then_values.items())
    return db.execute(_combined(key, first, then, returning), params).scalar_one()


__all__ = ["Row", "insert_both"]
