"""The cart page, checkout and the QA "cart status" page.

The cart page's forms post to flask-cart's form endpoints (303 back here); with
JavaScript, static/cart.js sends the same changes to the JSON routes instead.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask import (
    Blueprint,
    flash,
    g,
    get_flashed_messages,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user
from werkzeug.wrappers import Response

from flask_cart import CartChanged, CartError, LinesUnavailable, current_cart

from . import abandoned, cartview, elsewhere, hooks, status
from .forms import CheckoutForm
from .models import Order, OrderLine, Product, db

SEEN_PRICES = "demo_seen_prices"
GUEST_ORDERS = "demo_guest_orders"


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/basket", "cart", cart_page)
    bp.add_url_rule("/basket/fresh", "fresh_cart", fresh_cart)
    bp.add_url_rule("/checkout", "checkout", checkout, methods=["GET", "POST"])
    bp.add_url_rule(
        "/checkout/remove-unavailable",
        "remove_unavailable",
        remove_unavailable,
        methods=["POST"],
    )
    bp.add_url_rule("/basket/save", "save_cart", save_cart, methods=["POST"])
    bp.add_url_rule("/status", "status", status_page)
    abandoned.register(bp)


def see_other(endpoint: str, **values: Any) -> Response:
    return redirect(url_for(endpoint, **values), code=303)


def old_prices() -> dict[str, Decimal]:
    """The prices the lines were added at, where a line's price has changed since.

    flask-cart serves lines at today's price; the stored price costs one more read,
    done only when a line says its price changed.
    """
    items = current_cart.get()
    if not any(details.get("price_changed") for details in items.values()):
        return {}
    try:
        stored = current_cart.stored()
    except CartError:
        return {}
    return {pid: Decimal(line.unit_cost) for pid, line in stored.lines.items()}


def current_view(with_old_prices: bool = False) -> cartview.CartView:
    return cartview.build(current_cart.get(), old_prices() if with_old_prices else None)


def flash_price_changes(view: cartview.CartView) -> None:
    """Flash each price change once per session (the line keeps a note on the page)."""
    seen: dict[str, str] = dict(session.get(SEEN_PRICES, {}))
    for line in view.lines:
        if line.price_changed and seen.get(line.product_id) != str(line.unit_price):
            flash(cartview.price_change(line), "warning")
            seen[line.product_id] = str(line.unit_price)
    if seen != session.get(SEEN_PRICES, {}):
        session[SEEN_PRICES] = seen


# -- the cart page ---------------------------------------------------------------------


def cart_page() -> str:
    """The store's cart (not the browser's copy, which may be up to CART_SYNC_SECONDS old),
    saying what changed on another device since this browser last showed it."""
    seen = elsewhere.last_seen()
    read_store()
    if current_cart.unavailable:  # the browser's last copy: shown, but not to be trusted
        view = current_view()
        return render_template("cart.html", cart=view, refused={}, notes=[], unavailable=True)
    view = current_view(with_old_prices=True)
    flash_price_changes(view)
    items = current_cart.get()
    notes = []
    if seen is not None:
        notes = elsewhere.notes(seen[0], seen[1], elsewhere.quantities(items), hooks.product_name)
    elsewhere.remember(items)
    return render_template("cart.html", cart=view, refused=refused_changes(view), notes=notes)


def read_store() -> None:
    """Read the cart from the store now (not the browser's copy) for the rest of the page."""
    current_cart.refresh()
    g.cart_read = True


def fresh_cart() -> Any:
    """GET /basket/fresh: the store's cart as flask-cart's JSON, for the page's script to
    read back after a refused change (flask-cart's GET /cart may answer the browser's copy)."""
    read_store()
    if current_cart.unavailable:
        body = {"error": {"code": "store_unavailable", "message": "Your cart is unavailable."}}
        response = jsonify(body)
        response.status_code = 503
    else:
        elsewhere.remember(current_cart.get())
        response = jsonify(current_cart.as_json())
    response.headers["Cache-Control"] = "private, no-store"
    return response


def refused_changes(view: cartview.CartView) -> dict[str, str]:
    """After a quantity form came back refused (no JavaScript): that line's note, saying why
    and what the cart holds. The form's `next` names its line (``/basket?line=<id>``)."""
    errors = get_flashed_messages(category_filter=["cart-error"])
    product_id = request.args.get("line", "")
    line = next((ln for ln in view.lines if ln.product_id == product_id), None)
    if not errors or line is None:
        return {}
    why = hooks.readable(errors[-1]).rstrip(".")
    return {product_id: f"{why}: your cart still has {line.quantity}."}


# -- checkout --------------------------------------------------------------------------
#
# The review page reads the store (refresh(), not the browser's sync copy) and posts the
# cart's token; "Place order" takes the cart only if it still is what that token names
# (checkout(expect=token)), in the same database transaction as the order rows
# (session=db.session). A cart changed in between (another device, a new price, a stock
# drop) is shown again with a notice, never charged.


def reviewed_of(view: cartview.CartView) -> str:
    """What the review page shows, as a hidden field: "product:quantity:price ..."."""
    return " ".join(f"{ln.product_id}:{ln.quantity}:{ln.unit_price}" for ln in view.lines)


def parse_reviewed(text: str) -> dict[str, tuple[int, Decimal]]:
    seen: dict[str, tuple[int, Decimal]] = {}
    for part in (text or "").split():
        try:
            product_id, quantity, price = part.rsplit(":", 2)
            seen[product_id] = (int(quantity), Decimal(price))
        except (ValueError, ArithmeticError):
            continue
    return seen


def review(
    form: CheckoutForm, view: cartview.CartView, token: str, status: int = 200, **extra: Any
) -> Any:
    form.cart_token.data = token
    form.reviewed.data = reviewed_of(view)
    if current_user.is_authenticated:
        form.email.data = current_user.email
    return render_template("checkout.html", cart=view, form=form, **extra), status


def changed_review(form: CheckoutForm, view: cartview.CartView, token: str) -> Any:
    """The review again, of the cart as it is now, saying what changed since the last one."""
    if not view.lines:
        flash("Your cart changed since you reviewed it: it is empty now.", "warning")
        return see_other("shop.cart")
    seen = parse_reviewed(form.reviewed.data or "")
    notes: dict[str, str] = {}
    for line in view.lines:
        if line.product_id not in seen:
            notes[line.product_id] = "new since your review"
        elif seen[line.product_id][0] != line.quantity:
            notes[line.product_id] = f"was {seen[line.product_id][0]}"
        elif seen[line.product_id][1] != line.unit_price:
            notes[line.product_id] = f"was {cartview.money(seen[line.product_id][1])}"
    shown = {line.product_id for line in view.lines}
    gone = [hooks.product_name(pid) for pid in seen if pid not in shown]
    return review(form, view, token, 409, changed=True, notes=notes, gone=gone)


def fresh_view(error: CartChanged) -> tuple[cartview.CartView, str]:
    """The cart CartChanged carries (the JSON form of GET /cart) and its token."""
    items = {str(item["product_id"]): item for item in error.details.get("items") or []}
    return cartview.build(items), str(error.details.get("token", ""))


def unavailable_review() -> Any:
    """The cart store does not answer: say so, and offer no "Place order"."""
    return render_template("checkout.html", cart=None, form=None, unavailable=True), 503


def checkout() -> Any:
    form = CheckoutForm()
    if request.method == "GET" or not form.is_submitted():
        read_store()  # the store's cart: what will be ordered
        if current_cart.unavailable:
            return unavailable_review()
        view = current_view(with_old_prices=True)
        if not view.lines:
            flash("Your cart is empty: add something first.", "info")
            return see_other("shop.catalogue")
        elsewhere.remember(current_cart.get())
        return review(form, view, current_cart.token)
    return place_order(form)


def remove_unavailable() -> Response:
    """POST from the review: drop the lines the shop no longer sells, then review again."""
    read_store()
    if current_cart.unavailable:
        flash("Your cart is unavailable for a moment: nothing was changed.", "cart-error")
        return see_other("shop.checkout")
    names = {line.product_id: line.name for line in current_view().lines}
    for product_id in current_cart.remove_unavailable():
        name = names.get(product_id, "A product")
        flash(f"Removed {name} from your cart: it is no longer sold.", "info")
    return see_other("shop.checkout")


def place_order(form: CheckoutForm) -> Any:
    reviewed_token = form.cart_token.data or ""
    guest = not current_user.is_authenticated
    email = current_user.email if not guest else (form.email.data or "").strip().lower()
    valid = form.validate()
    if guest and not email and not form.email.errors:
        form.email.errors.append("Enter an e-mail address for your order confirmation.")
    if not valid or not email:
        read_store()
        if current_cart.unavailable:
            return unavailable_review()
        view = current_view()
        if not view.lines:
            return see_other("shop.cart")
        return review(form, view, current_cart.token, 422)

    if guest:
        keep_email(email)
    read_store()
    if current_cart.unavailable:
        return unavailable_review()
    view = current_view()
    if not view.lines:
        flash("Your cart is empty: was it checked out on another device?", "info")
        return see_other("shop.orders" if not guest else "shop.catalogue")
    if current_cart.token != reviewed_token or view.problems:
        # Changed since the review, or no longer in stock: review it again, order nothing.
        return changed_review(form, view, current_cart.token)

    # The order is what the review showed: its lines, quantities and prices.
    order = Order(
        user_id=None if guest else current_user.id,
        email=email,
        total=view.total,
        currency=hooks.cart_settings().currency,
        created_at=datetime.now(timezone.utc),
    )
    for line in view.lines:
        order.lines.append(
            OrderLine(
                product_id=line.product_id,
                name=line.name,
                unit_price=line.unit_price,
                quantity=line.quantity,
            )
        )
        # Take the stock in the same transaction; never below zero.
        taken = db.session.execute(
            sa.update(Product)
            .where(Product.id == line.product_id, Product.stock >= line.quantity)
            .values(stock=Product.stock - line.quantity)
        )
        if taken.rowcount != 1:
            db.session.rollback()  # sold meanwhile: the review changes
            read_store()
            return changed_review(form, current_view(), current_cart.token)
    db.session.add(order)
    db.session.flush()
    try:
        # On the SQL store (the shop's own database) the cart is removed in db.session's
        # transaction, committed or rolled back with the order below. Redis has no part in
        # that transaction: there the removal is its own atomic step, taken only after the
        # order's rows were written (flushed), just before the commit.
        current_cart.checkout(expect=reviewed_token, session=cart_session())
    except CartChanged as error:
        db.session.rollback()
        return changed_review(form, *fresh_view(error))
    except LinesUnavailable:
        # A product left the catalogue since the checks above: nothing ordered; the review
        # again, offering to remove what is no longer sold.
        db.session.rollback()
        read_store()
        return review(form, current_view(), current_cart.token, 409)
    except Exception:
        db.session.rollback()
        raise
    db.session.commit()
    session.pop(SEEN_PRICES, None)
    if guest:
        # A guest sees their orders through this (signed) session: no account, no cookie of
        # flask-cart's any more (checkout cleared the guest cookie).
        session[GUEST_ORDERS] = [*session.get(GUEST_ORDERS, [])[-9:], order.id]
        flash(
            f"Thank you! Order #{order.id} is placed. The confirmation goes to {email} "
            "(this is a demo: no e-mail is sent).",
            "success",
        )
    else:
        flash(f"Thank you! Order #{order.id} is placed.", "success")
    return see_other("shop.order", order_id=order.id)


def save_cart() -> Response:
    """The "save my cart" box: keep a guest's address with the cart for a reminder e-mail."""
    address = request.form.get("email", "")
    try:
        kept = current_cart.set_email(address)
    except CartError as error:
        if error.status >= 500:
            raise
        flash("Please enter a valid e-mail address, like name@example.com.", "error")
        return see_other("shop.cart")
    if kept:
        flash(
            f"Saved: if you leave your cart, we will send a link to {address.strip()} "
            "to pick it up again.",
            "info",
        )
    else:
        flash("Add something to your cart first.", "info")
    return see_other("shop.cart")


def cart_session() -> Any:
    """db.session when the carts live in the shop's database (CART_STORE "sqlalchemy" on
    the app's `db`), else None: `checkout(session=...)` joins only a SQL transaction."""
    from . import carts  # the package imports this module

    return db.session if carts.uses_app_db() else None


def keep_email(email: str) -> None:
    """A guest's checkout address goes with the cart: a reminder can reach them if the
    order is not placed (checkout removes it with the cart)."""
    # An address the form took but the library does not, or a store that is down: the
    # order goes on, and the steps below say what the store answers.
    with contextlib.suppress(CartError):
        current_cart.set_email(email)


def guest_orders() -> list[int]:
    """The orders this browser placed as a guest (kept in the signed session)."""
    return [int(n) for n in session.get(GUEST_ORDERS, []) if isinstance(n, int)]


# -- QA --------------------------------------------------------------------------------


def status_page() -> str:
    return render_template("status.html", rows=status.describe())
