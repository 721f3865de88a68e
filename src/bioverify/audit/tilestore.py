"""Tiles on the store: read a set of tiles in one query, write changed ones as upserts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from sqlalchemy import Connection, Insert, Table, and_, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from bioverify.audit.models import AuditTile
from bioverify.audit.tiles import TileKey, TreeEdge, edge_keys

_TILES: Table = AuditTile.__table__  # type: ignore[assignment]
#: The upsert statement by dialect name.
_UPSERTS: dict[str, Insert] = {}


def read_tiles(conn: Connection, keys: Iterable[TileKey]) -> dict[TileKey, bytes]:
    """The stored tiles among ``keys`` (absent ones are simply not in the result)."""
    by_level: dict[int, set[int]] = defaultdict(set)
    for level, index in keys:
        by_level[level].add(index)
    if not by_level:
        return {}
    where = or_(
        *(
            and_(AuditTile.level == level, AuditTile.idx.in_(sorted(indexes)))
            for level, indexes in by_level.items()
        )
    )
    rows = conn.execute(select(AuditTile.level, AuditTile.idx, AuditTile.data).where(where))
    return {(level, index): bytes(data) for level, index, data in rows}


def _upsert(dialect: str) -> Insert:
    """The tile upsert of ``dialect``, built once (every sequencer batch runs it)."""
    stmt = _UPSERTS.get(dialect)
    if stmt is None:
        if dialect == "postgresql":
            pg = postgresql.insert(_TILES)
            stmt = pg.on_conflict_do_update(
                index_elements=["level", "idx"], set_={"data": pg.excluded.data}
            )
        elif dialect == "sqlite":
            lite = sqlite.insert(_TILES)
            stmt = lite.on_conflict_do_update(
                index_elements=["level", "idx"], set_={"data": lite.excluded.data}
            )
        else:
            raise RuntimeError(f"audit tiles do not support the {dialect} dialect")
        _UPSERTS[dialect] = stmt
    return stmt


def write_tiles(conn: Connection, tiles: Mapping[TileKey, bytes]) -> None:
    """Insert or replace tiles (a partial tile's row is rewritten as it grows)."""
    if not tiles:
        return
    rows = [{"level": lv, "idx": ix, "data": data} for (lv, ix), data in sorted(tiles.items())]
    conn.execute(_upsert(conn.dialect.name), rows)


def load_edge(conn: Connection, size: int) -> TreeEdge:
    """The right edge of the stored tree of ``size`` leaves."""
    keys = [(level, index) for level, (index, width) in edge_keys(size).items() if width]
    return TreeEdge.load(size, read_tiles(conn, keys))


__all__ = ["load_edge", "read_tiles", "write_tiles"]
