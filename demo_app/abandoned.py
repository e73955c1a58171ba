"""Abandoned carts in the demo: the QA page of what `flask cart abandoned --dry-run` would
report, and a `cart_abandoned` receiver that writes the e-mail it would send to the log."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, current_app, render_template

from flask_cart import CartError
from flask_cart.signals import cart_abandoned

from .models import User, db

log = logging.getLogger("demo_app.abandoned")
#: The QA page lists at most this many carts (a dry run: nothing is claimed).
PAGE_LIMIT = 200


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/status/abandoned", "abandoned", abandoned_page)


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
    """What `flask cart abandoned --dry-run` would report now (nothing is recorded)."""
    carts = current_app.extensions["cart"]
    rows: list[dict[str, Any]] = []
    error = None
    try:
        for report in carts.abandoned_reports(limit=PAGE_LIMIT):
            rows.append(
                {
                    **report,
                    "customer": customer_email(report["customer_id"]) or report["customer_id"],
                    "quantity": sum(item["quantity"] for item in report["items"]),
                }
            )
    except CartError as exc:
        error = exc.message
    return render_template(
        "abandoned.html",
        rows=rows,
        stages=[s.label for s in carts.settings().abandoned_stages],
        limit=PAGE_LIMIT,
        error=error,
    )
