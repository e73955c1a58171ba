"""Abandoned carts in the demo: the QA page (only with DEMO_QA: it shows addresses and live
recovery links) of what `flask cart abandoned --dry-run` would report, its button that runs
`flask cart abandoned --send` into the outbox (demo_app.outbox), and a `cart_abandoned`
receiver that writes each report to the log."""

from __future__ import annotations

import logging
import threading
from typing import Any

from flask import Blueprint, Flask, abort, current_app, flash, redirect, render_template, url_for
from werkzeug.wrappers import Response

from flask_cart import CartError
from flask_cart.signals import cart_abandoned

from . import outbox
from .models import User, db

log = logging.getLogger("demo_app.abandoned")
#: The QA page lists at most this many carts (a dry run: nothing is claimed).
PAGE_LIMIT = 200
#: What the QA page's signed campaign link adds (product -> units), valid for a week.
CAMPAIGN = {"coffee-beans": 1, "enamel-mug": 2}
CAMPAIGN_DAYS = 7
#: One run of the reminders at a time (their output is captured from stdout).
_sending = threading.Lock()


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/status/abandoned", "abandoned", abandoned_page)
    bp.add_url_rule("/status/abandoned/send", "send_reminders", send_reminders, methods=["POST"])


def qa_only() -> None:
    """404 unless the demo runs with DEMO_QA (the page shows addresses and live links)."""
    if not current_app.config.get("DEMO_QA"):
        abort(404)


def connect(app: Flask) -> None:
    """Log the recovery e-mail each report of `flask cart abandoned` would send."""
    cart_abandoned.connect(log_recovery_email, app, weak=False)


def customer_email(customer_id: str | None) -> str | None:
    if customer_id is None or not customer_id.isdigit():
        return None
    user = db.session.get(User, int(customer_id))
    return None if user is None else user.email


def log_recovery_email(sender: Flask, **report: Any) -> None:
    """The e-mail a shop would send: to the customer, with the cart and its recovery link."""
    to = customer_email(report["customer_id"])
    if to is None:
        log.info(
            "abandoned guest cart %s (stage %s, report %s): no e-mail address known; "
            "recovery link %s",
            report["identifier"],
            report["stage"],
            report["report_id"],
            report["recovery_url"],
        )
        return
    items = report["snapshot"]["items"]
    lines = "\n".join(f"  {d['quantity']} x {d.get('name') or pid}" for pid, d in items.items())
    log.info(
        "e-mail (report %s)\nTo: %s\nSubject: You left something in your cart\n\n"
        "Your cart is waiting for you:\n%s\nTotal: %s\n\nPick up where you left off: %s\n",
        report["report_id"],
        to,
        lines,
        report["snapshot"]["total_cost"],
        report["recovery_url"],
    )


def abandoned_page() -> str:
    """What `flask cart abandoned --dry-run` would report now (nothing is recorded), the
    outbox, and a signed campaign link."""
    qa_only()
    carts = current_app.extensions["cart"]
    rows: list[dict[str, Any]] = []
    error = None
    try:
        for report in carts.abandoned_reports(limit=PAGE_LIMIT, with_links=True):
            rows.append(
                {
                    **report,
                    "customer": customer_email(report["customer_id"]) or report["customer_id"],
                    "quantity": sum(item["quantity"] for item in report["items"]),
                }
            )
    except CartError:
        error = "The carts cannot be read right now: try again in a moment."
    return render_template(
        "abandoned.html",
        rows=rows,
        stages=[s.label for s in carts.settings().abandoned_stages],
        limit=PAGE_LIMIT,
        error=error,
        messages=outbox.messages(),
        outbox_folder=str(outbox.folder()),
        campaign=carts.cart_link(CAMPAIGN, max_age=CAMPAIGN_DAYS * 86400),
        campaign_items=CAMPAIGN,
        campaign_days=CAMPAIGN_DAYS,
        server_name=current_app.config.get("SERVER_NAME"),
    )


def send_reminders() -> Response:
    """Run `flask cart abandoned --send` (into the outbox) and flash what it said."""
    qa_only()
    said, failed = run_send()
    flash(f"flask cart abandoned --send: {said}", "error" if failed else "info")
    return redirect(url_for("shop.abandoned"), code=303)


def run_send() -> tuple[str, bool]:
    """The command's output in one line, and whether it failed (the app's own ``flask cart
    abandoned --send``, its output captured by Click's runner, not the process's stdout)."""
    with _sending:
        result = current_app.test_cli_runner().invoke(args=["cart", "abandoned", "--send"])
    lines = result.output.splitlines()
    said = "; ".join(" ".join(line.split()) for line in lines if line.strip())
    return said or "done", result.exit_code != 0
