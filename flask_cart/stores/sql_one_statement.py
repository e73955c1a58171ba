"""PostgreSQL: an add in one statement instead of the upsert, the rule in Python and the
``UPDATE`` of the locking path.

``INSERT ... ON CONFLICT DO UPDATE ... WHERE <the add's rule holds> RETURNING`` applies the
add to the cart's JSON content on the server: the same result as SQLStore._change with
apply_add (the line's quantity summed, the new price winning, new details replacing the old
ones and none keeping them, a new line at the end; a cart that does not exist or has
expired started afresh with a new uid). It runs in the store call's own transaction (its
``SET LOCAL`` bounds, the watchdog, the commit sent by the client only after the answer), so
a call that gave up is never applied later.

When the rule does not hold (a cap, a sealed cart, a cart of another layout) no row comes
back and the locking path runs in the same transaction, which raises the precise error (or
applies the add, if the cart changed meanwhile). Changes with an idempotency key, carts
allowed more than ONE_STATEMENT_MAX_LINES lines and schema-translated engines always take
the locking path. The content is read as ``json`` whatever its column type (``json`` as
flask-cart creates it, or ``jsonb`` after a migration).
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine

from ..lines import Limits, Line, Owner
from . import sql_driver
from .base import CartKey
from .sql_dialects import as_utc

#: Carts allowed more lines than this (CART_MAX_LINES) take the locking path: the statement
#: walks the JSON lines a few times, which costs more than reading and writing them once.
ONE_STATEMENT_MAX_LINES = 100
#: SQLSTATE class of data the statement cannot read (a "\u0000" escape in a line's details,
#: 22P05, which PostgreSQL's JSON operators refuse; a quantity that is not an integer): the
#: locking path, which reads the cart in Python, takes such a cart.
DATA_EXCEPTION = "22"


def applies(engine: Engine, line: Line, limits: Limits) -> bool:
    """Whether an add of `line` under `limits` on `engine` can be tried in one statement."""
    return (
        engine.dialect.name == "postgresql"
        and line.quantity <= limits.max_line_quantity
        and limits.max_lines <= ONE_STATEMENT_MAX_LINES
        and not engine.get_execution_options().get("schema_translate_map")
    )


def unreadable(exc: sa.exc.DataError) -> bool:
    """Whether the statement failed on a cart PostgreSQL's JSON operators cannot read."""
    orig = exc.orig
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return isinstance(state, str) and state.startswith(DATA_EXCEPTION)


_ADD = """
INSERT INTO {table} AS c
    (identifier, instance, content, customer_id, is_guest, version, created_at, updated_at,
     expires_at)
VALUES (:identifier, :instance, CAST(:fresh AS json), :customer_id, :is_guest, 1, :now, :now,
    :expires)
ON CONFLICT (identifier, instance) DO UPDATE SET
    content = CASE WHEN {live} THEN json_build_object(
        'lines', (
            SELECT json_agg(v ORDER BY i) FROM (
                SELECT CASE WHEN e->>0 = :product_id THEN json_build_array(
                    e->0, (e->>1)::bigint + :quantity, CAST(:unit_cost AS text),
                    CASE WHEN CAST(:keep_extra AS boolean) THEN e->3 ELSE CAST(:extra AS json) END
                ) ELSE e END AS v, i
                FROM json_array_elements(c.content::json->'lines') WITH ORDINALITY AS x(e, i)
                UNION ALL
                SELECT json_build_array(
                    CAST(:product_id AS text), CAST(:quantity AS bigint), CAST(:unit_cost AS text),
                    CAST(:extra AS json)
                ),
                    9223372036854775807
                WHERE NOT EXISTS (
                    SELECT 1 FROM json_array_elements(c.content::json->'lines') AS y(e)
                    WHERE e->>0 = :product_id
                )
            ) AS u
        ),
        'merged', coalesce(c.content::json->'merged', '[]'::json),
        'sealed', false,
        'uid', c.content::json->'uid'
    ) ELSE EXCLUDED.content::json END,
    version = c.version + 1,
    created_at = CASE WHEN {live} THEN c.created_at ELSE EXCLUDED.created_at END,
    updated_at = EXCLUDED.updated_at,
    customer_id = EXCLUDED.customer_id,
    is_guest = EXCLUDED.is_guest,
    expires_at = EXCLUDED.expires_at
WHERE CASE
    WHEN c.expires_at IS NOT NULL AND c.expires_at <= :now THEN true
    WHEN json_typeof(c.content::json->'lines') IS DISTINCT FROM 'array'
        OR coalesce(c.content::json->>'sealed', 'false') <> 'false' THEN false
    WHEN c.version <= 0 THEN json_array_length(c.content::json->'lines') = 0
    WHEN coalesce(c.content::json->>'uid', '') = '' THEN false
    WHEN EXISTS (
        SELECT 1 FROM json_array_elements(c.content::json->'lines') AS y(e)
        WHERE e->>0 = :product_id
    ) THEN (
        SELECT (e->>1)::bigint + :quantity
        FROM json_array_elements(c.content::json->'lines') AS y(e)
        WHERE e->>0 = :product_id LIMIT 1
    ) <= :max_line_quantity
    ELSE json_array_length(c.content::json->'lines') < :max_lines
END
RETURNING c.content, c.customer_id, c.version, c.created_at, c.updated_at, c.expires_at
"""
_LIVE = "c.version > 0 AND (c.expires_at IS NULL OR c.expires_at > :now)"


class Row(NamedTuple):
    """The cart's row after the add, as the driver answered it (the columns SQLStore reads)."""

    content: Any
    customer_id: str | None
    version: int
    created_at: datetime | None
    updated_at: datetime | None
    expires_at: datetime | None


def add_statement(table: sa.Table) -> Any:
    """The add statement on `table` (built once per table)."""
    built = table.info.get("flask_cart.one_statement_add")
    if built is None:
        name = postgresql.dialect().identifier_preparer.format_table(table)
        text = _ADD.format(table=name, live=_LIVE)
        c = table.c
        built = sa.text(text).columns(*(c[name] for name in Row._fields))
        table.info["flask_cart.one_statement_add"] = built
    return built


def driver_sql(table: sa.Table, conn: Connection) -> str:
    """The add statement's SQL as the driver takes it (``%(name)s`` parameters)."""
    cache: dict[str, str] = table.info.setdefault("flask_cart.one_statement_sql", {})
    sql = cache.get(conn.dialect.paramstyle)
    if sql is None:
        sql = cache[conn.dialect.paramstyle] = str(
            add_statement(table).compile(dialect=conn.dialect)
        )
    return sql


def add(
    conn: Connection,
    table: sa.Table,
    now: datetime,
    key: CartKey,
    line: Line,
    owner: Owner,
    limits: Limits,
) -> Any:
    """Run the add on `conn`, in the caller's transaction: the cart's row after it, or None
    when the add's rule does not hold (the caller then takes the locking path)."""
    extra = json.dumps(dict(line.extra))
    row = json.dumps([line.product_id, line.quantity, line.unit_cost])[:-1]
    uid = os.urandom(16).hex()
    fresh = f'{{"lines": [{row}, {extra}]], "merged": [], "sealed": false, "uid": "{uid}"}}'
    params = {
        "identifier": key.identifier,
        "instance": key.instance,
        "fresh": fresh,
        "customer_id": owner.customer_id,
        "is_guest": owner.customer_id is None,
        "now": now,
        "expires": now + timedelta(seconds=owner.ttl),
        "product_id": line.product_id,
        "quantity": line.quantity,
        "unit_cost": line.unit_cost,
        "keep_extra": not line.extra,
        "extra": extra,
        "max_line_quantity": limits.max_line_quantity,
        "max_lines": limits.max_lines,
    }
    if not sql_driver.direct(conn):
        return conn.execute(add_statement(table), params).one_or_none()
    got = sql_driver.execute(conn, driver_sql(table, conn), params)
    if got is None:
        return None
    content, customer_id, version, created_at, updated_at, expires_at = got
    if isinstance(content, (str, bytes)):  # the driver left JSON undecoded
        content = json.loads(content)
    times = as_utc(created_at), as_utc(updated_at), as_utc(expires_at)
    return Row(content, customer_id, version, *times)


__all__ = [
    "ONE_STATEMENT_MAX_LINES",
    "Row",
    "add",
    "add_statement",
    "applies",
    "driver_sql",
    "unreadable",
]
