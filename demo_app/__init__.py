"""A small storefront built on flask-cart, for newcomers and for QA.

``python -m demo_app`` (or ``make demo``) serves it on http://127.0.0.1:5000.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask_login import LoginManager
from flask_mail import Mail
from flask_wtf.csrf import CSRFProtect

from flask_cart import CartManager

from . import config as demo_config
from .models import Product, User, db

login_manager = LoginManager()
login_manager.login_view = "shop.login"
login_manager.login_message = "Please log in to continue."
login_manager.login_message_category = "info"
csrf = CSRFProtect()
carts = CartManager()
mail = Mail()


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    try:
        return db.session.get(User, int(user_id))
    except ValueError:
        return None


@carts.customer_email
def customer_email(customer_id: str) -> str | None:
    """Where a customer's reminder goes (a guest's is the address kept with the cart)."""
    from .abandoned import customer_email as lookup

    return lookup(customer_id)


@carts.product_loader
def load_product(product_id: str) -> dict[str, Any] | None:
    """What flask-cart needs about a product: the price (Decimal), name and stock."""
    product = db.session.get(Product, product_id)
    if product is None:
        return None
    return {"unit_cost": product.price, "name": product.name, "stock": product.stock}


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The shop. `config` overrides the defaults and the environment (see demo_app.config)."""
    app = Flask(__name__, instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(
        SQLALCHEMY_DATABASE_URI="sqlite:///" + os.path.join(app.instance_path, "demo_shop.sqlite3"),
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
        CART_STORE="sqlalchemy",
        CART_REDIS_URL="redis://localhost:6379/0",
        # Create the tables and seed the catalogue and demo users on start.
        DEMO_INIT_DB=True,
        # A form's CSRF token lives as long as the browser session, not an hour.
        WTF_CSRF_TIME_LIMIT=None,
        DEMO_SHOP_NAME="Never-Lost Goods",
        CART_SHOP_NAME="Never-Lost Goods",
        # The QA page of abandoned carts (addresses, live recovery links): DEMO_QA=1.
        DEMO_QA=False,
        # Reminders go to the outbox folder (demo_app.outbox), never to a mail server.
        MAIL_SUPPRESS_SEND=True,
        MAIL_DEFAULT_SENDER="Never-Lost Goods <shop@example.com>",
    )
    app.config.update(demo_config.from_environment())
    if config:
        app.config.update(config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = demo_config.secret_key(app.instance_path)

    db.init_app(app)
    login_manager.init_app(app)
    csrf.init_app(app)
    carts.init_app(app, db=db)
    # RFC 8058's one-click unsubscribe is a POST from the mailbox provider, with no cookie
    # and no CSRF token: the signed token in its URL is its credential.
    csrf.exempt(app.view_functions["flask_cart.unsubscribe"])
    mail.init_app(app)

    from . import views

    views.init_app(app)
    from . import abandoned

    abandoned.connect(app)
    from . import outbox

    outbox.connect(app)

    if app.config["DEMO_INIT_DB"]:
        with app.app_context():
            init_db()
    return app


def init_db() -> list[str]:
    """Create the shop's tables (and the carts' table) and seed them; what was created."""
    from .seed import seed

    db.create_all()
    carts.create_tables()
    check_schema()
    return seed()


def check_schema() -> None:
    """Refuse, with what to do, a database made by an older demo (create_all adds no columns)."""
    columns = {column["name"] for column in sa.inspect(db.engine).get_columns("demo_order")}
    if "email" not in columns:
        raise RuntimeError(
            "the demo_order table predates guest checkout (no email column): start from a "
            "fresh database (delete instance/demo_shop.sqlite3, or point DATABASE_URL elsewhere)"
        )
