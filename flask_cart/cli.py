"""``flask cart ...``: the command group that ``CartManager.init_app`` adds to ``app.cli``.

``flask cart cleanup`` deletes carts unchanged for longer than their retention (guest
and customer carts separately), reports statistics with ``--stats``, and counts what it
would delete with ``--dry-run``. See the README section "Cleaning up expired carts".
``flask cart abandoned`` reports carts left unchanged past a stage (see abandoned.py and
the README section "Abandoned carts").
"""

from __future__ import annotations

import json
import logging
import smtplib
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup
from werkzeug.routing import BuildError

from .abandoned import DEFAULT_BATCH_SIZE as DEFAULT_ABANDONED_BATCH
from .abandoned import (
    AbandonedCart,
    AbandonedResult,
    Reminder,
    Stage,
    report_json,
    report_slices,
    run_abandoned,
)
from .catalog import Catalog
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
from .config import MAX_BATCH_SIZE, MAX_DAYS, check_days, parse_stage, parse_stages
from .errors import CartError, InvalidInput, InvalidInstance, StoreUnavailable
from .recovery import recovery_links
from .reminders import Mailer, MailNotConfigured, check_email, reminder_context, unsubscribe_links
from .signals import cart_abandoned
from .stores.base import CartKey
from .totals import snapshot

cart_cli = AppGroup("cart", help="Manage the carts flask-cart stores.")

DAYS = click.IntRange(min=0, max=MAX_DAYS)
BATCH = click.IntRange(min=1, max=MAX_BATCH_SIZE)


def _configured_days(key: str, default: int) -> float:
    try:
        return check_days(current_app.config.get(key, default), key)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def _manager() -> Any:
    """The app's CartManager."""
    manager = current_app.extensions.get("cart")
    if manager is None:
        raise click.ClickException(
            "flask-cart is not initialised on this app (call CartManager.init_app(app))"
        )
    return manager


def _store() -> Any:
    return _manager().get_store()


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
    type=BATCH,
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
    type=BATCH,
    default=DEFAULT_ABANDONED_BATCH,
    show_default=True,
    help="Carts claimed per batch (a run killed half-way leaves at most one batch unsent).",
)
@click.option(
    "--with-links",
    is_flag=True,
    help="In a dry run, print working recovery and unsubscribe links too (by default a dry "
    "run prints them as null: its output goes to logs).",
)
@click.option(
    "--send",
    is_flag=True,
    help="E-mail each reminder through the app's Flask-Mail (extra 'mail'); a reminder "
    "that could not be sent is reported again by the next run.",
)
def abandoned(
    stages: tuple[Stage, ...],
    dry_run: bool,
    as_json: bool,
    limit: int | None,
    batch_size: int,
    with_links: bool,
    send: bool,
) -> None:
    """Report carts left unchanged past a stage: the cart_abandoned signal, once per stage.

    A cart past several stages is reported for the latest one only. Each report is
    claimed in the store before it is sent, so runs at once or again report it once; each
    cart is read again and re-priced just before its report.
    """
    if send and dry_run:
        raise click.UsageError("--send and --dry-run exclude each other")
    try:
        chosen = parse_stages(
            [s.label for s in stages]
            if stages
            else current_app.config.get("CART_ABANDONED_STAGES", ("1h", "24h", "72h"))
        )
    except (TypeError, ValueError) as exc:
        raise click.UsageError(str(exc)) from exc
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    wants_links = with_links or not dry_run
    has_host = bool(current_app.config.get("SERVER_NAME"))
    if wants_links and not has_host:
        message = (
            "SERVER_NAME is not set: recovery links need the shop's host outside a request "
            "(e.g. SERVER_NAME = 'shop.example.com', PREFERRED_URL_SCHEME = 'https')"
        )
        if not dry_run:
            raise click.ClickException(message + "; nothing was reported")
        click.echo(f"Warning: {message}; recovery_url is null in this dry run", err=True)

    unlinkable = 0

    make_link: Callable[[str, str], str] | None = None
    make_unsubscribe: Callable[[CartKey, str], str] | None = None

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
    outbox = _Outbox(app, _manager()) if send else None
    started = time.monotonic()
    try:
        manager = _manager()
        store = manager.get_store()
        settings = manager.settings(app)
        unit = settings.money_quantum
        catalog = Catalog(manager.loader, settings)  # one per run: one lookup per product
        if wants_links and has_host:  # a link that cannot be made fails before any claim
            try:
                make_link = recovery_links(manager)
                make_link(PROBE_GUEST_ID, "cart")
                make_unsubscribe = unsubscribe_links(app)
            except (RuntimeError, BuildError) as exc:
                raise click.ClickException(
                    f"recovery links cannot be made: {_one_line(str(exc))}; nothing was reported"
                ) from exc
        if outbox is not None and make_unsubscribe is None:
            raise click.ClickException(
                "reminders need unsubscribe links: turn CART_BLUEPRINT on; nothing was reported"
            )
        for batch in run_abandoned(
            store, stages=chosen, dry_run=dry_run, limit=limit, batch_size=batch_size
        ):
            done: set[str] = set()
            try:
                lines = []
                signal = not dry_run and bool(cart_abandoned.receivers)  # no snapshot for nobody
                # Claimed carts are read again, a slice at a time, just before their reports
                # (a dry run has just read them).
                for reminders, left_out in report_slices(
                    store, batch, catalog, recheck=not dry_run
                ):
                    result.left_out += left_out
                    for reminder in reminders:
                        report = reminder.report
                        url = url_of(report)
                        unsubscribe = (
                            None
                            if make_unsubscribe is None
                            else make_unsubscribe(report.key, report.state.uid)
                        )
                        as_dict = report_json(
                            report,
                            url,
                            unit=unit,
                            email=reminder.email,
                            unsubscribe_url=unsubscribe,
                        )
                        if outbox is not None:
                            as_dict["sent"] = outbox.send(reminder, as_dict)
                        done.add(report.report_id)
                        if signal:
                            cart_abandoned.send(
                                app,
                                identifier=report.key.identifier,
                                instance=report.key.instance,
                                customer_id=report.state.customer_id,
                                stage=report.stage.label,
                                snapshot=snapshot(report.key, report.state, unit),
                                recovery_url=url,
                                report_id=report.report_id,
                                email=reminder.email,
                                unsubscribe_url=unsubscribe,
                            )
                        result.by_stage[report.stage.label] += 1
                        if as_json:
                            lines.append(json.dumps(as_dict) + "\n")
                    if outbox is not None:
                        outbox.release_failed(store)
                if lines:
                    sys.stdout.write("".join(lines))
                    sys.stdout.flush()
            except BaseException:
                # Claimed and not sent (the mail server went away, an interrupt): the next
                # run reports them again.
                if not dry_run:
                    _release_quietly(store, [r for r in batch if r.report_id not in done])
                raise
    except _MailDown as exc:
        raise click.ClickException(
            f"the mail server did not take the reminders ({exc}); the ones not sent are "
            "reported again by the next run"
        ) from exc
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
    if outbox is not None:
        click.echo(outbox.summary(), err=as_json)


class _MailDown(Exception):
    """The mail server cannot take reminders now (down, refusing the sender, ...)."""


def _release_quietly(store: Any, reports: list[AbandonedCart]) -> None:
    try:
        store.release_abandoned(reports)
    except Exception:  # the store is down too: those reports wait for their next stage
        logging.getLogger("flask_cart").exception("flask-cart: releasing claims failed")


class _Outbox:
    """``--send``: each reminder to the guest's address or the shop's customer_email hook."""

    def __init__(self, app: Any, manager: Any) -> None:
        try:
            self.mailer = Mailer(app)
        except MailNotConfigured as exc:
            raise click.ClickException(f"{exc}; nothing was reported") from exc
        self.lookup = manager.email_lookup
        self.currency = manager.settings(app).currency
        self.sent = 0
        self.no_address = 0
        self.refused: list[AbandonedCart] = []
        self.refused_total = 0

    def address(self, reminder: Reminder) -> str | None:
        customer = reminder.report.state.customer_id
        if customer is None:
            return reminder.email
        if self.lookup is None:
            return None
        found = self.lookup(customer)
        if found is None:
            return None
        try:
            return check_email(found)
        except InvalidInput:
            return None

    def send(self, reminder: Reminder, report: dict[str, Any]) -> bool:
        """Send one reminder; False when it has no address or the server refused it."""
        to = self.address(reminder)
        if to is None:
            self.no_address += 1
            return False
        context = reminder_context(report, self.mailer.shop_name, self.currency)
        try:
            self.mailer.send(to, context)
        except smtplib.SMTPRecipientsRefused:
            self.refused.append(reminder.report)
            self.refused_total += 1
            return False
        except Exception as exc:
            raise _MailDown(_one_line(f"{type(exc).__name__}: {exc}")) from exc
        self.sent += 1
        return True

    def release_failed(self, store: Any) -> None:
        """The refused reminders are reported again by the next run."""
        if self.refused:
            store.release_abandoned(self.refused)
            self.refused = []

    def summary(self) -> str:
        parts = [f"sent {self.sent} reminder{'' if self.sent == 1 else 's'}"]
        if self.no_address:
            parts.append(f"{self.no_address} without an address (not sent)")
        if self.refused_total:
            parts.append(f"{self.refused_total} refused by the mail server (sent next run)")
        return "; ".join(parts)
