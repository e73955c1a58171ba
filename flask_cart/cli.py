"""``flask cart ...``: the command group that ``CartManager.init_app`` adds to ``app.cli``.

``flask cart cleanup`` deletes carts unchanged for longer than their retention (guest
and customer carts separately), reports statistics with ``--stats``, and counts what it
would delete with ``--dry-run``. See the README section "Cleaning up expired carts".
``flask cart abandoned`` reports carts left unchanged past a stage (see abandoned.py and
the README section "Abandoned carts").
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup

from .abandoned import DEFAULT_BATCH_SIZE as DEFAULT_ABANDONED_BATCH
from .abandoned import (
    AbandonedCart,
    AbandonedResult,
    Stage,
    report_json,
    run_abandoned,
)
from .cart import snapshot
from .cleanup import (
    DEFAULT_BATCH_SIZE,
    Progress,
    Retention,
    collect_stats,
    run_cleanup,
    stats_lines,
    store_now,
    summary_line,
    utc_iso,
)
from .config import check_days, parse_stage, parse_stages
from .errors import CartError, InvalidInput, InvalidInstance, StoreUnavailable
from .recovery import recovery_links
from .signals import cart_abandoned

cart_cli = AppGroup("cart", help="Manage the carts flask-cart stores.")

DAYS = click.IntRange(min=0)


def _configured_days(key: str, default: int) -> float:
    try:
        return check_days(current_app.config.get(key, default), key)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def _store() -> Any:
    state = current_app.extensions.get("cart")
    if state is None:
        raise click.ClickException(
            "flask-cart is not initialised on this app (call CartManager.init_app(app))"
        )
    return state.get_store()


def _one_line(message: str) -> str:
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    return lines[0] if lines else "error"


def _is_connection_error(exc: BaseException) -> bool:
    """A connection failure raised before the store could wrap it (e.g. while opening it)."""
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    names = {cls.__module__.split(".")[0] + "." + cls.__name__ for cls in type(exc).__mro__}
    return bool(
        names
        & {
            "redis.ConnectionError",
            "redis.TimeoutError",
            "sqlalchemy.OperationalError",
            "sqlalchemy.InterfaceError",
        }
    )


def _no_length() -> Iterator[int]:
    """An iterable without a length: click draws an open-ended bar with a counter."""
    yield from ()


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[Progress | None]:
    """A progress callback drawing on stderr, or None when stderr is not a terminal."""
    if not enabled:
        yield None
        return
    bar: Any = None
    shown = 0

    def progress(done: int, total: int | None) -> None:
        nonlocal bar, shown
        if bar is None:
            label = "deleting expired carts" if total is not None else "examining carts"
            bar = click.progressbar(
                _no_length() if total is None else None,
                length=total,
                label=label,
                show_pos=True,
                file=sys.stderr,
            )
            bar.__enter__()
        bar.update(done - shown)
        shown = done

    try:
        yield progress
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)


@cart_cli.command("cleanup")
@click.option(
    "--guest-days",
    type=DAYS,
    default=None,
    help="Delete guest carts unchanged for more than N days [default: CART_GUEST_DAYS, 30].",
)
@click.option(
    "--customer-days",
    type=DAYS,
    default=None,
    help="Delete customer carts unchanged for more than N days [default: CART_CUSTOMER_DAYS, 90].",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Carts per batch (each batch is one short transaction or pipeline).",
)
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@click.option(
    "--stats",
    is_flag=True,
    help="Print totals (all, guest, customer, changed in 24 h and 7 days, oldest, "
    "due for deletion); delete nothing.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def cleanup(
    guest_days: int | None,
    customer_days: int | None,
    batch_size: int,
    dry_run: bool,
    stats: bool,
    as_json: bool,
) -> None:
    """Delete carts unchanged for longer than their retention."""
    retention = Retention(
        guest_days=(
            guest_days if guest_days is not None else _configured_days("CART_GUEST_DAYS", 30)
        ),
        customer_days=(
            customer_days
            if customer_days is not None
            else _configured_days("CART_CUSTOMER_DAYS", 90)
        ),
    )
    try:
        store = _store()
        now = store_now(store)
        head = {
            "store": type(store).__name__,
            "now": utc_iso(now),
            "guest_days": retention.guest_days,
            "customer_days": retention.customer_days,
        }
        if stats:
            totals = collect_stats(store, retention, now=now)
            if as_json:
                click.echo(json.dumps({**head, "stats": True, **totals.as_dict()}))
            else:
                for line in stats_lines(totals, retention):
                    click.echo(line)
            return
        interactive = not as_json and sys.stderr.isatty()
        with _progress_bar(interactive) as progress:
            result = run_cleanup(
                store,
                retention,
                batch_size=batch_size,
                dry_run=dry_run,
                progress=progress,
                now=now,
            )
    except StoreUnavailable as exc:
        raise click.ClickException(_one_line(exc.message)) from exc
    except CartError as exc:
        raise click.ClickException(_one_line(exc.message)) from exc
    except Exception as exc:
        if not _is_connection_error(exc):
            raise
        raise click.ClickException(_one_line(f"the cart store cannot be reached: {exc}")) from exc
    if as_json:
        click.echo(json.dumps({**head, **result.as_dict()}))
    else:
        click.echo(summary_line(result, retention))


#: A well-formed guest id, to check before a run that recovery links can be made.
PROBE_GUEST_ID = "00000000-0000-4000-8000-000000000000"


class _StageType(click.ParamType):
    """A duration such as 30s, 15m, 1h, 2d."""

    name = "duration"

    def convert(self, value: Any, param: Any, ctx: Any) -> Stage:
        if isinstance(value, Stage):
            return value
        try:
            return parse_stage(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@cart_cli.command("abandoned")
@click.option(
    "--stage",
    "stages",
    type=_StageType(),
    multiple=True,
    help="A stage of idleness (30s, 15m, 1h, 2d); repeat for several "
    "[default: CART_ABANDONED_STAGES, 1h 24h 72h].",
)
@click.option(
    "--dry-run", is_flag=True, help="List what would be reported; record and send nothing."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per report.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N reports.")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=DEFAULT_ABANDONED_BATCH,
    show_default=True,
    help="Carts claimed per batch (a run killed half-way leaves at most one batch unsent).",
)
def abandoned(
    stages: tuple[Stage, ...], dry_run: bool, as_json: bool, limit: int | None, batch_size: int
) -> None:
    """Report carts left unchanged past a stage: the cart_abandoned signal, once per stage.

    A cart past several stages is reported for the latest one only. Each report is
    claimed in the store before it is sent, so runs at once or again report it once.
    """
    try:
        chosen = parse_stages(
            [s.label for s in stages]
            if stages
            else current_app.config.get("CART_ABANDONED_STAGES", ("1h", "24h", "72h"))
        )
    except (TypeError, ValueError) as exc:
        raise click.UsageError(str(exc)) from exc
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    has_host = bool(current_app.config.get("SERVER_NAME"))
    if not has_host:
        message = (
            "SERVER_NAME is not set: recovery links need the shop's host outside a request "
            "(e.g. SERVER_NAME = 'shop.example.com', PREFERRED_URL_SCHEME = 'https')"
        )
        if not dry_run:
            raise click.ClickException(message + "; nothing was reported")
        click.echo(f"Warning: {message}; recovery_url is null in this dry run", err=True)

    unlinkable = 0

    make_link: Callable[[str, str], str] | None = None

    def url_of(report: AbandonedCart) -> str | None:
        """The cart's recovery link; None for a cart no link can name (an identifier that
        is neither a guest id nor ``customer:<id>``, an instance the app does not have)."""
        nonlocal unlinkable
        if make_link is None:
            return None
        try:
            return make_link(report.key.identifier, report.key.instance)
        except (InvalidInput, InvalidInstance):
            unlinkable += 1
            return None

    result = AbandonedResult(by_stage={s.label: 0 for s in chosen[::-1]}, dry_run=dry_run)
    started = time.monotonic()
    try:
        store = _store()
        if has_host:  # a link that cannot be made fails here, before anything is claimed
            try:
                make_link = recovery_links(current_app.extensions["cart"])
                make_link(PROBE_GUEST_ID, "cart")
            except RuntimeError as exc:
                raise click.ClickException(
                    f"recovery links cannot be made: {_one_line(str(exc))}; nothing was reported"
                ) from exc
        for batch in run_abandoned(
            store, stages=chosen, dry_run=dry_run, limit=limit, batch_size=batch_size
        ):
            lines = []
            send = not dry_run and bool(cart_abandoned.receivers)  # no snapshot for nobody
            for report in batch:
                url = url_of(report)
                if send:
                    cart_abandoned.send(
                        app,
                        identifier=report.key.identifier,
                        instance=report.key.instance,
                        customer_id=report.state.customer_id,
                        stage=report.stage.label,
                        snapshot=snapshot(report.key, report.state),
                        recovery_url=url,
                        report_id=report.report_id,
                    )
                result.by_stage[report.stage.label] += 1
                if as_json:
                    lines.append(json.dumps(report_json(report, url)) + "\n")
            if lines:
                sys.stdout.write("".join(lines))
                sys.stdout.flush()
    except CartError as exc:
        raise click.ClickException(_one_line(exc.message)) from exc
    except Exception as exc:
        if not _is_connection_error(exc):
            raise
        raise click.ClickException(_one_line(f"the cart store cannot be reached: {exc}")) from exc
    result.seconds = time.monotonic() - started
    if unlinkable:
        noun = "cart has" if unlinkable == 1 else "carts have"
        click.echo(
            f"Warning: {unlinkable} {noun} no recovery link (recovery_url null): its "
            "identifier is neither a guest id nor 'customer:<user id>', or its instance "
            "is not in CART_INSTANCES",
            err=True,
        )
    if not as_json:
        click.echo(result.summary())
