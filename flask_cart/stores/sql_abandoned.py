"""Abandoned carts on the SQL store: claims in a table of their own, batches on the index.

The claims table ``<carts table>_abandoned`` holds one row per report: ``report_id``
(primary key: identifier, instance, stage, uid and version hashed, see
flask_cart.abandoned.report_id), the cart's row id, the stage in seconds, the cart's
version, when and by which run it was claimed. The carts table and its change statements
are untouched: a change gives the cart a new version, and a claim of an older version
names another report, so every stage is due again. ``create_all`` / ``db.create_all()``
create the table where missing, and so does the first run on an existing deployment.
``flask cart cleanup`` deletes claims whose cart is gone or has changed since.

A run walks, per stage (latest first) and per kind (guest, customer), the carts whose last
change lies in that stage's window, through the index ``(is_guest, updated_at)`` with
keyset pagination on ``(updated_at, id)``, `batch_size` rows at a time. Per batch:

1. one SELECT of the batch's rows not claimed for the stage at their version (an
   anti-join on the claims' index ``(cart_id, stage, version)``, the cart's created_at
   telling a cart made again at a reused row id from the old one), decoded with the
   store's own decoder (expired, sealed and empty carts are left out);
2. in one transaction, ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` (``INSERT
   IGNORE`` on MariaDB and MySQL) selecting the cart rows only while they have the
   versions read in step 1, tagged with this run's token. On PostgreSQL it is one
   statement joining the batch as arrays, whose ``RETURNING`` names the claims inserted;
   elsewhere one per cart, sent as an executemany, then SELECTs of the claims carrying
   the token. Those, and only those, are this run's reports. Two runs at once race on
   the primary key and one wins each report.

The walk's SELECTs read one batch ahead in a thread (flask_cart.stores.read_ahead; not on
SQLite, nor in a dry run, which lists each batch as it is when its turn comes), so the next
read overlaps the reports of the current batch; the claims stay one batch at a time. Each
SELECT is one bounded transaction (WALK_TIMEOUT), as a change is. Memory holds three
batches at most, whatever the table size.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..lines import CartState
from . import sql_calls
from .base import AbandonedCart, BatchHook, CartKey, Contact, Stage, report_id, windows
from .read_ahead import read_ahead
from .sql_dialects import KeyString, UTCDateTime

if TYPE_CHECKING:
    from .sql import SQLStore

#: The claim transaction of one batch may take longer than one change (CART_STORE_TIMEOUT).
CLAIM_TIMEOUT = 30.0
#: One batch's SELECT, fetched and decoded by the driver in the read-ahead thread, shares
#: the interpreter with the reports being sent: it may take longer than one change.
WALK_TIMEOUT = 30.0
#: Report ids per SELECT of the claims won (SQLite before 3.32 allows 999 parameters).
CHUNK = 500


def abandoned_table(metadata: sa.MetaData, carts_table: str) -> sa.Table:
    """The claims table of the carts table `carts_table` on `metadata` (reused if defined)."""
    name = f"{carts_table}_abandoned"
    if name in metadata.tables:
        return metadata.tables[name]
    contacts_table(metadata, carts_table)  # on the same metadata: db.create_all() makes it
    return sa.Table(
        name,
        metadata,
        sa.Column("report_id", KeyString(64), primary_key=True),
        sa.Column("cart_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False),
        sa.Column("stage", sa.Integer, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("claimed_at", UTCDateTime, nullable=False),
        sa.Column("run", KeyString(32), nullable=False),
        sa.Index(f"ix_{name}_cart", "cart_id", "stage", "version"),
    )


def _insert_ignore(conn: Connection, claims: sa.Table, select: sa.Select[Any]) -> Any:
    """INSERT ... SELECT that skips a report already claimed, in the connection's dialect."""
    columns = ["report_id", "cart_id", "stage", "version", "created_at", "claimed_at", "run"]
    name = conn.dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(claims).from_select(columns, select).on_conflict_do_nothing()
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(claims).from_select(columns, select).on_conflict_do_nothing()
    if name in ("mysql", "mariadb"):
        return claims.insert().from_select(columns, select).prefix_with("IGNORE")
    raise NotImplementedError(f"abandoned carts are not supported on {name}")


def _ensure_table(store: SQLStore) -> None:
    if not getattr(store, "_abandoned_ready", False):
        with store._errors():
            store.abandoned_table.create(store.engine, checkfirst=True)
        store._abandoned_ready = True  # type: ignore[attr-defined]


def claim_abandoned(
    store: SQLStore,
    *,
    stages: Sequence[Stage],
    now: datetime,
    limit: int | None,
    batch_size: int,
    dry_run: bool = False,
    on_batch: BatchHook | None = None,
) -> Iterator[list[AbandonedCart]]:
    """See CartStore.claim_abandoned."""
    _ensure_table(store)
    run = uuid.uuid4().hex
    left = limit
    walks = _walks(store, stages, now, batch_size)
    # SQLite is in-process (nothing to overlap) and may share one connection across threads;
    # a dry run lists each batch as it is when its turn comes, not as read a batch earlier.
    ahead = not dry_run and store.engine.dialect.name != "sqlite"
    for stage, batch in read_ahead(walks) if ahead else walks:
        due = _unclaimed(store, batch, stage, now)
        if left is not None:
            due = due[:left]
        if not due:
            continue
        if on_batch is not None:
            on_batch([report.key for report, _ in due])
        won = [r for r, _ in due] if dry_run else _claim(store, due, stage, now, run)
        if left is not None:
            left -= len(won)
        if won:
            yield won
        if left is not None and left <= 0:
            return


def _walks(
    store: SQLStore, stages: Sequence[Stage], now: datetime, size: int
) -> Iterator[tuple[Stage, list[Any]]]:
    """Every window's batches, per stage (latest first) and kind: (stage, rows)."""
    for stage, lower, upper in windows(stages, now):
        for is_guest in (True, False):
            for rows in _walk(store, stage, is_guest=is_guest, lower=lower, upper=upper, size=size):
                yield stage, rows


def _walk(
    store: SQLStore,
    stage: Stage,
    *,
    is_guest: bool,
    lower: datetime | None,
    upper: datetime,
    size: int,
) -> Iterator[list[Any]]:
    """Rows of one kind last changed in [lower, upper) and not claimed for `stage` at their
    version, oldest first, `size` at a time (the claims left out by an anti-join)."""
    c = store.table.c
    a = store.abandoned_table.c
    claimed = sa.exists().where(
        a.cart_id == c.id,
        a.stage == sa.literal(stage.seconds, sa.Integer()),
        a.version == c.version,
        a.created_at == c.created_at,
    )
    base = sa.select(store.table).where(
        c.is_guest == sa.literal(is_guest, sa.Boolean()), c.updated_at < upper, ~claimed
    )
    if lower is not None:
        base = base.where(c.updated_at >= lower)
    after: tuple[datetime, int] | None = None
    while True:
        stmt = base
        if after is not None:
            stmt = stmt.where(
                c.updated_at >= after[0],
                sa.or_(c.updated_at > after[0], c.id > after[1]),
            )
        stmt = stmt.order_by(c.updated_at, c.id).limit(size)
        # One bounded transaction (statement and lock timeouts, the client-side watchdog):
        # a table locked by another session or a frozen server fails the run, never hangs it.
        rows = sql_calls.run(store.engine, max(store.timeout, WALK_TIMEOUT), _all_rows(stmt))
        if not rows:
            return
        yield rows
        if len(rows) < size:
            return
        after = (rows[-1].updated_at, rows[-1].id)


def _all_rows(stmt: sa.Select[Any]) -> Any:
    def work(conn: Connection) -> list[Any]:
        return list(conn.execute(stmt).all())

    return work


def _unclaimed(
    store: SQLStore, rows: list[Any], stage: Stage, now: datetime
) -> list[tuple[AbandonedCart, Any]]:
    """The batch's live carts with lines (decoded with the store's decoder)."""
    found: list[tuple[AbandonedCart, Any]] = []
    for row in rows:
        state: CartState = store._decode(row, now)
        if not state.exists or state.sealed or not state.lines:
            continue
        key = CartKey(row.identifier, row.instance)
        found.append((AbandonedCart(key, state, stage, report_id(key, state, stage)), row))
    return found


def _claim(
    store: SQLStore,
    due: list[tuple[AbandonedCart, Any]],
    stage: Stage,
    now: datetime,
    run: str,
) -> list[AbandonedCart]:
    """Record the claims of `due` while each cart has the version read; the ones won."""
    c = store.table.c
    claims = store.abandoned_table

    def insert_returning(conn: Connection) -> set[str]:
        """PostgreSQL: one statement joining the batch's arrays; RETURNING names the rows
        it inserted, which are exactly the claims this run won."""
        q = conn.dialect.identifier_preparer.quote
        stmt = sa.text(
            f"INSERT INTO {q(claims.name)} (report_id, cart_id, stage, version, "
            "created_at, claimed_at, run) "
            "SELECT v.rid, c.id, :stage, c.version, c.created_at, :now, :run "
            f"FROM {q(store.table.name)} AS c JOIN unnest(CAST(:ids AS bigint[]), "
            "CAST(:versions AS bigint[]), CAST(:rids AS text[])) AS v(id, version, rid) "
            "ON c.id = v.id AND c.version = v.version ON CONFLICT DO NOTHING "
            "RETURNING report_id"
        ).bindparams(sa.bindparam("now", type_=UTCDateTime()))
        params = {
            "stage": stage.seconds,
            "now": now,
            "run": run,
            "ids": [row.id for _, row in due],
            "versions": [r.state.version for r, _ in due],
            "rids": [r.report_id for r, _ in due],
        }
        return set(conn.execute(stmt, params).scalars())

    def insert_then_select(conn: Connection) -> set[str]:
        """Elsewhere: one INSERT ... SELECT per cart (an executemany), then the claims
        carrying this run's token."""
        select = sa.select(
            sa.bindparam("rid", type_=KeyString(64)),
            c.id,
            sa.literal(stage.seconds, sa.Integer()),
            c.version,
            c.created_at,
            sa.literal(now, UTCDateTime()),
            sa.literal(run, KeyString(32)),
        ).where(c.id == sa.bindparam("cid"), c.version == sa.bindparam("ver"))
        params = [{"rid": r.report_id, "cid": row.id, "ver": r.state.version} for r, row in due]
        conn.execute(_insert_ignore(conn, claims, select), params)
        won: set[str] = set()
        for start in range(0, len(due), CHUNK):
            chunk = due[start : start + CHUNK]
            won.update(
                conn.execute(
                    sa.select(claims.c.report_id).where(
                        claims.c.run == run,
                        claims.c.report_id.in_([r.report_id for r, _ in chunk]),
                    )
                ).scalars()
            )
        return won

    def work(conn: Connection) -> set[str]:
        if conn.dialect.name == "postgresql":
            return insert_returning(conn)
        return insert_then_select(conn)

    won = sql_calls.run(store.engine, max(store.timeout, CLAIM_TIMEOUT), work)
    return [r for r, _ in due if r.report_id in won]


def delete_stale_claims(store: SQLStore, *, batch_size: int = 1000) -> int:
    """Delete claims whose cart is gone or has changed since (run by ``flask cart cleanup``)."""
    claims = store.abandoned_table
    with store._errors():
        if not sa.inspect(store.engine).has_table(claims.name):
            return 0
    carts = store.table
    stale = (
        sa.select(claims.c.report_id)
        .select_from(
            claims.outerjoin(
                carts,
                sa.and_(
                    carts.c.id == claims.c.cart_id,
                    carts.c.version == claims.c.version,
                    carts.c.created_at == claims.c.created_at,
                ),
            )
        )
        .where(carts.c.id.is_(None))
        .limit(batch_size)
    )
    deleted = 0
    while True:
        with store._errors(), store.engine.begin() as conn:
            ids = list(conn.execute(stale).scalars())
            if ids:
                conn.execute(sa.delete(claims).where(claims.c.report_id.in_(ids)))
        deleted += len(ids)
        if len(ids) < batch_size:
            delete_stale_contacts(store, batch_size=batch_size)
            return deleted


def _at_keys(columns: Any, keys: Sequence[CartKey]) -> Iterator[Any]:
    """WHERE clauses naming `keys`, CHUNK at a time: ``instance = ? AND identifier IN (...)``
    per instance (an index range per key, where a list of row values is planned slowly)."""
    by_instance: dict[str, list[str]] = {}
    for key in keys:
        by_instance.setdefault(key.instance, []).append(key.identifier)
    for instance, identifiers in by_instance.items():
        for start in range(0, len(identifiers), CHUNK):
            chunk = identifiers[start : start + CHUNK]
            yield sa.and_(columns.instance == instance, columns.identifier.in_(chunk))


def load_many(store: SQLStore, keys: Sequence[CartKey]) -> list[CartState]:
    """The carts at `keys` as they are now, in order: one SELECT per CHUNK keys, in one
    bounded transaction."""
    if not keys:
        return []
    c = store.table.c

    def work(conn: Connection) -> dict[tuple[str, str], Any]:
        rows: dict[tuple[str, str], Any] = {}
        for where in _at_keys(c, keys):
            for row in conn.execute(sa.select(store.table).where(where)):
                rows[(row.identifier, row.instance)] = row
        return rows

    rows = sql_calls.run(store.engine, max(store.timeout, WALK_TIMEOUT), work)
    now = store.clock()
    return [store._decode(rows.get((k.identifier, k.instance)), now) for k in keys]


def reread(store: SQLStore, keys: Sequence[CartKey]) -> list[tuple[CartState, Contact]]:
    """See CartStore.reread_abandoned: the carts joined with their contacts, one SELECT per
    CHUNK keys, in one bounded transaction."""
    if not keys:
        return []
    table = _contacts(store)
    c, k = store.table.c, table.c
    joined = store.table.outerjoin(
        table, sa.and_(k.identifier == c.identifier, k.instance == c.instance)
    )
    columns = [
        *store.table.c,
        k.uid.label("contact_uid"),
        k.email.label("contact_email"),
        k.unsubscribed.label("contact_unsubscribed"),
    ]

    def work(conn: Connection) -> dict[tuple[str, str], Any]:
        rows: dict[tuple[str, str], Any] = {}
        for where in _at_keys(c, keys):
            for row in conn.execute(sa.select(*columns).select_from(joined).where(where)):
                rows[(row.identifier, row.instance)] = row
        return rows

    rows = sql_calls.run(store.engine, max(store.timeout, WALK_TIMEOUT), work)
    now = store.clock()
    out = []
    for key in keys:
        row = rows.get((key.identifier, key.instance))
        state = store._decode(row, now)
        contact = Contact()
        if row is not None and row.contact_uid is not None and row.contact_uid == state.uid:
            contact = Contact(row.contact_email, bool(row.contact_unsubscribed))
        out.append((state, contact))
    return out


def release(store: SQLStore, reports: Sequence[AbandonedCart]) -> None:
    """Delete the claims of `reports` (their reminders were not sent)."""
    claims = store.abandoned_table
    ids = [r.report_id for r in reports]

    def work(conn: Connection) -> None:
        for start in range(0, len(ids), CHUNK):
            conn.execute(
                sa.delete(claims).where(claims.c.report_id.in_(ids[start : start + CHUNK]))
            )

    if ids:
        sql_calls.run(store.engine, max(store.timeout, CLAIM_TIMEOUT), work)


# --- contacts: a guest's address and the unsubscribe flag -----------------------------------


def contacts_table(metadata: sa.MetaData, carts_table: str) -> sa.Table:
    """``<carts table>_contacts``: per cart key, the cart (uid) it was given for, the
    address, and whether reminders were stopped. A row naming another uid (the cart was
    checked out and made again) is ignored and replaced; ``flask cart cleanup`` deletes
    rows whose cart is gone."""
    name = f"{carts_table}_contacts"
    if name in metadata.tables:
        return metadata.tables[name]
    return sa.Table(
        name,
        metadata,
        sa.Column("identifier", KeyString(255), primary_key=True),
        sa.Column("instance", KeyString(64), primary_key=True),
        sa.Column("uid", KeyString(64), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("unsubscribed", sa.Boolean, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )


def _contacts(store: SQLStore) -> sa.Table:
    table = contacts_table(store.table.metadata, store.table.name)
    if not getattr(store, "_contacts_ready", False):
        with store._errors():
            table.create(store.engine, checkfirst=True)
        store._contacts_ready = True  # type: ignore[attr-defined]
    return table


def _upsert(conn: Connection, table: sa.Table, values: dict[str, Any], update: list[str]) -> Any:
    """INSERT ... that updates the columns `update` of a row already at the key."""
    name = conn.dialect.name
    if name in ("postgresql", "sqlite"):
        if name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
        stmt = insert(table).values(values)
        return stmt.on_conflict_do_update(
            index_elements=["identifier", "instance"],
            set_={c: stmt.excluded[c] for c in update},
        )
    if name in ("mysql", "mariadb"):
        from sqlalchemy.dialects.mysql import insert as my_insert

        my = my_insert(table).values(values)
        return my.on_duplicate_key_update({c: my.inserted[c] for c in update})
    raise NotImplementedError(f"contact addresses are not supported on {name}")


def _set_contact(
    store: SQLStore, key: CartKey, uid: str | None, values: dict[str, Any], update: list[str]
) -> bool:
    """Write `values` for the cart at `key` when it exists (and, with `uid`, has that uid)."""
    table = _contacts(store)
    c, k = store.table.c, table.c

    def work(conn: Connection) -> bool:
        row = conn.execute(
            sa.select(store.table).where(c.identifier == key.identifier, c.instance == key.instance)
        ).one_or_none()
        state = store._decode(row, store.clock())
        if not state.exists or state.sealed or (uid is not None and state.uid != uid):
            return False
        at_key = sa.and_(k.identifier == key.identifier, k.instance == key.instance)
        conn.execute(sa.delete(table).where(at_key, k.uid != state.uid))  # an older cart's
        full = {
            "identifier": key.identifier,
            "instance": key.instance,
            "uid": state.uid,
            "email": None,
            "unsubscribed": False,
            "updated_at": store.clock(),
            **values,
        }
        conn.execute(_upsert(conn, table, full, [*update, "updated_at"]))
        return True

    return sql_calls.run(store.engine, store.timeout, work)


def set_email(store: SQLStore, key: CartKey, email: str | None) -> bool:
    """See CartStore.set_email."""
    return _set_contact(store, key, None, {"email": email}, ["email"])


def unsubscribe(store: SQLStore, key: CartKey, uid: str) -> bool:
    """See CartStore.unsubscribe."""
    return _set_contact(store, key, uid, {"unsubscribed": True}, ["unsubscribed"])


def contacts(store: SQLStore, keys: Sequence[CartKey], uids: Sequence[str]) -> list[Contact]:
    """See CartStore.contacts: one SELECT per CHUNK keys."""
    if not keys:
        return []
    table = _contacts(store)
    k = table.c

    def work(conn: Connection) -> dict[tuple[str, str], Any]:
        rows: dict[tuple[str, str], Any] = {}
        for where in _at_keys(k, keys):
            for row in conn.execute(sa.select(table).where(where)):
                rows[(row.identifier, row.instance)] = row
        return rows

    rows = sql_calls.run(store.engine, max(store.timeout, WALK_TIMEOUT), work)
    out = []
    for key, uid in zip(keys, uids, strict=True):
        row = rows.get((key.identifier, key.instance))
        if row is None or row.uid != uid:
            out.append(Contact())
        else:
            out.append(Contact(row.email, bool(row.unsubscribed)))
    return out


def delete_stale_contacts(store: SQLStore, *, batch_size: int = 1000) -> int:
    """Delete contacts whose cart is gone (checked out, merged away, deleted, cleaned up)
    or was made again since (run by ``flask cart cleanup``)."""
    table = contacts_table(store.table.metadata, store.table.name)
    with store._errors():
        if not sa.inspect(store.engine).has_table(table.name):
            return 0
    c, k = store.table.c, table.c
    deleted = 0
    after: tuple[str, str] | None = None
    while True:
        stmt = sa.select(table).order_by(k.identifier, k.instance).limit(batch_size)
        if after is not None:
            stmt = stmt.where(sa.tuple_(k.identifier, k.instance) > after)
        with store._errors(), store.engine.begin() as conn:
            rows = list(conn.execute(stmt))
            if not rows:
                return deleted
            pairs = [(r.identifier, r.instance) for r in rows]
            carts = {
                (r.identifier, r.instance): r
                for r in conn.execute(
                    sa.select(store.table).where(sa.tuple_(c.identifier, c.instance).in_(pairs))
                )
            }
            now = store.clock()
            stale = [
                (r.identifier, r.instance)
                for r in rows
                if (state := store._decode(carts.get((r.identifier, r.instance)), now)).uid != r.uid
                or not state.exists
            ]
            if stale:
                conn.execute(sa.delete(table).where(sa.tuple_(k.identifier, k.instance).in_(stale)))
        deleted += len(stale)
        if len(rows) < batch_size:
            return deleted
        after = pairs[-1]
