"""Pages of the shop: catalogue, product, account (register, log in, log out), orders."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import (
    Blueprint,
    Flask,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from flask_cart import same_site_url

from . import cart_pages, carts, hooks
from .forms import LoginForm, RegisterForm
from .models import Order, Product, User, db
from .seed import DEMO_USERS

bp = Blueprint("shop", __name__)
cart_pages.register(bp)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    hooks.init_app(app)


def safe_next(target: str | None, default: str = "shop.catalogue") -> str:
    """`target` when it is a URL on this site, else the URL of `default`."""
    if target and same_site_url(target):
        return target
    return url_for(default)


def see_other(location: str) -> Response:
    return redirect(location, code=303)


# -- catalogue -------------------------------------------------------------------------


@bp.get("/")
def catalogue() -> str:
    products = db.session.scalars(sa.select(Product).order_by(Product.name)).all()
    return render_template("catalogue.html", products=products)


@bp.get("/products/<product_id>")
def product(product_id: str) -> str:
    item = db.session.get(Product, product_id)
    if item is None:
        abort(404)
    return render_template("product.html", product=item)


# -- account ---------------------------------------------------------------------------


@bp.route("/register", methods=["GET", "POST"])
def register() -> Any:
    if current_user.is_authenticated:
        return see_other(url_for("shop.catalogue"))
    form = RegisterForm()
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        if db.session.scalar(sa.select(User).filter_by(email=email)) is not None:
            form.email.errors.append("An account with this e-mail exists: log in instead.")
        else:
            user = User(email=email, name=form.name.data.strip())
            user.set_password(form.password.data)
            db.session.add(user)
            db.session.commit()
            # The guest's cart becomes the new customer's cart (moved, not copied) ...
            carts.link_guest_cart(user)
            # ... so the merge Flask-Login's signal triggers next has nothing left to do.
            login_user(user)
            flash(f"Welcome, {user.name}! Your account is ready.", "success")
            return see_other(safe_next(request.args.get("next")))
    return render_template("register.html", form=form), 422 if form.errors else 200


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if current_user.is_authenticated:
        return see_other(safe_next(request.args.get("next")))
    form = LoginForm()
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        user = db.session.scalar(sa.select(User).filter_by(email=email))
        if user is not None and user.check_password(form.password.data):
            hooks.remember_guest_lines()  # to say what the merge had to leave out
            # Flask-Login's user_logged_in signal merges the guest cart (see hooks).
            login_user(user, remember=form.remember.data)
            flash(f"Welcome back, {user.name}.", "success")
            return see_other(safe_next(request.args.get("next")))
        form.password.errors.append("Wrong e-mail or password.")
    return (
        render_template("login.html", form=form, demo_users=DEMO_USERS),
        422 if form.errors else 200,
    )


@bp.post("/logout")
def logout() -> Response:
    if current_user.is_authenticated:
        logout_user()
        flash("You are logged out. Your cart is kept for your next visit.", "info")
    return see_other(url_for("shop.catalogue"))


# -- orders ----------------------------------------------------------------------------


@bp.get("/orders")
@login_required
def orders() -> str:
    return render_template("orders.html", orders=current_user.orders)


@bp.get("/orders/<int:order_id>")
def order(order_id: int) -> str:
    """An order of the customer logged in, or one this browser placed as a guest."""
    placed = db.session.get(Order, order_id)
    if placed is None:
        abort(404)
    mine = current_user.is_authenticated and placed.user_id == current_user.id
    if not mine and not (placed.user_id is None and order_id in cart_pages.guest_orders()):
        abort(404)
    return render_template("order.html", order=placed)
