"""PostgreSQL statistics for a service's tables that filled before autovacuum first looked.

A new database's tables have no statistics until autovacuum first analyses them, and it
looks only every `autovacuum_naptime` (a minute by default). Until then PostgreSQL plans a
lookup of a council's rows by a list of ids (`WHERE council = $1 AND person_id IN (…)`) as
if few rows were the council's: it reads every one of them and checks it against the list,
125 ms against 0.9 ms for 100 ids among 36,000 rows (docs/scaling.md). A council's first
conversion fills tables from empty in exactly that minute. So while a service runs on
PostgreSQL it analyses, every few seconds, those of its tables that hold rows but were never
analysed; from then on autovacuum keeps their statistics current. SQLite needs nothing:
its planner takes these lookups through the primary key without statistics.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from servicekit.runtime import ServiceRuntime

log = structlog.get_logger(__name__)

LOOK_EVERY_SECONDS = 5.0
ROWS_WORTH_ANALYSING = 500
"""Rows written to a never-analysed table before the service analyses it: enough for the
statistics to say which values are common (a council, a consumer), cheap to read."""

_NEVER_ANALYSED = sa.text(
    "SELECT relname FROM pg_stat_user_tables"
    " WHERE schemaname = current_schema()"
    " AND last_analyze IS NULL AND last_autoanalyze IS NULL"
    " AND n_mod_since_analyze >= :rows"
    " ORDER BY relname"
)


async def analyse_new_tables(
    engine: AsyncEngine, *, tried: frozenset[str] = frozenset()
) -> list[str]:
    """Analyse the tables of the engine's database that filled but were never analysed,
    except those `tried` already; returns their names (none on SQLite)."""
    if engine.dialect.name != "postgresql":
        return []
    async with engine.connect() as conn:
        found = await conn.execute(_NEVER_ANALYSED, {"rows": ROWS_WORTH_ANALYSING})
        names = [name for name in found.scalars() if name not in tried]
        quote = engine.dialect.identifier_preparer.quote
        for name in names:
            await conn.execute(sa.text(f"ANALYZE {quote(name)}"))
        await conn.commit()
    return names


async def analyse_new_tables_forever(runtime: ServiceRuntime[Any]) -> None:
    """While the service runs on PostgreSQL: analyse_new_tables every LOOK_EVERY_SECONDS."""
    engine = runtime.database.engine
    if engine.dialect.name != "postgresql":
        return
    # A table is analysed once by the service: where its role does not own the table,
    # PostgreSQL skips it with a warning, and asking every few seconds would only repeat it.
    tried: set[str] = set()
    while True:
        try:
            analysed = await analyse_new_tables(engine, tried=frozenset(tried))
            tried.update(analysed)
            if analysed:
                log.info("tables_analysed", service=runtime.name, tables=analysed)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # the database is down: look again later
            log.warning("tables_not_analysed", service=runtime.name, error=str(err))
        await asyncio.sleep(LOOK_EVERY_SECONDS)
