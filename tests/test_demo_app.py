"""The demo shop through Flask's test client: pages, accounts, the no-JavaScript cart, checkout.

CSRF protection stays on: each form post carries the token the page rendered. The forms
post to flask-cart's own form endpoints (``POST /cart/items`` ...), as the pages do.
The app fixture is called `shop_app`, not `app`: pytest-flask would otherwise push one
app context around the whole test, sharing `g` (and Flask-Login's user) across requests.
"""

from __future__ import annotations

import re
import time
import uuid
from decimal import Decimal
from typing import Any

import pytest

from demo_app import create_app
from demo_app.models import Order, Product, User, db
from demo_app.seed import CATALOGUE, DEMO_USERS

STORES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
]
TOKEN = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


@pytest.fixture
def extra_config() -> dict[str, Any]:
    """More configuration for `shop_app` (a test parametrizes it to change the defaults)."""
    return {}


@pytest.fixture(params=STORES)
def shop_app(request: pytest.FixtureRequest, tmp_path: Any, extra_config: dict[str, Any]) -> Any:
    config: dict[str, Any] = {
        "TESTING": True,
        "SECRET_KEY": "demo-test",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'shop.sqlite3'}",
        "CART_STORE": "sqlalchemy",
        "CART_SYNC_SECONDS": 0,
        "CART_STORE_TIMEOUT": 30,  # these tests are not about deadlines
    }
    prefix = f"fc_demo_{uuid.uuid4().hex[:12]}:"
    if request.param == "redis":
        client = request.getfixturevalue("redis_client")
        request.addfinalizer(lambda: delete_keys(client, prefix))
        url = client.connection_pool.connection_kwargs
        config.update(
            CART_STORE="redis",
            CART_REDIS_URL=f"redis://{url['host']}:{url['port']}/{url.get('db', 0)}",
            CART_KEY_PREFIX=prefix,
        )
    return create_app({**config, **extra_config})


def delete_keys(client: Any, prefix: str) -> None:
    keys = list(client.scan_iter(match=f"{prefix}*", count=500))
    if keys:
        client.delete(*keys)


class Browser:
    """A test client that keeps the last page's CSRF token, like a browser would."""

    def __init__(self, app: Any) -> None:
        self.client = app.test_client()
        self.token = ""

    def get(self, path: str, **kwargs: Any) -> Any:
        response = self.client.get(path, **kwargs)
        found = TOKEN.search(response.get_data(as_text=True))
        if found:
            self.token = found.group(1)
        return response

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        if not self.token:
            self.get("/")
        return self.client.post(path, data={"csrf_token": self.token, **(data or {})}, **kwargs)

    def page(self, path: str) -> str:
        response = self.get(path)
        assert response.status_code == 200, (path, response.status_code)
        return str(response.get_data(as_text=True))

    def add(self, product_id: str, quantity: Any = 1, **extra: Any) -> Any:
        data = {"product_id": product_id, "quantity": quantity, "next": "/", **extra}
        return self.post("/cart/items", data)

    def set(self, product_id: str, quantity: Any) -> Any:
        data = {"_method": "PATCH", "quantity": quantity, "next": "/basket"}
        return self.post(f"/cart/items/{product_id}", data)

    def remove(self, product_id: str) -> Any:
        return self.post(f"/cart/items/{product_id}", {"_method": "DELETE", "next": "/basket"})

    def empty(self) -> Any:
        return self.post("/cart", {"_method": "DELETE", "next": "/basket"})

    def log_in(self, email: str = DEMO_USERS[0][0], password: str = DEMO_USERS[0][1]) -> Any:
        self.get("/login")
        return self.post("/login", {"email": email, "password": password})

    def review(self) -> dict[str, str]:
        """The checkout page's hidden fields (the cart token and what it shows)."""
        html = self.page("/checkout")
        return dict(re.findall(r'name="(cart_token|reviewed)" type="hidden" value="([^"]*)"', html))

    def place_order(self, review: dict[str, str], **fields: Any) -> Any:
        return self.post("/checkout", {**review, **fields})

    def badge(self) -> str:
        found = re.search(r"data-cart-badge>([^<]*)<", self.page("/"))
        assert found
        return found.group(1)

    def lines(self, html: str | None = None) -> dict[str, int]:
        """The cart page's lines (product id -> quantity), of `html` or a fresh page."""
        html = self.page("/basket") if html is None else html
        rows = re.findall(r'<tr data-line="([^"]+)"[^>]*>(.*?)</tr>', html, re.S)
        return {
            pid: int(re.search(r'name="quantity"[^>]*value="(\d+)"', row).group(1))
            for pid, row in rows
        }


@pytest.fixture
def browser(shop_app: Any) -> Browser:
    return Browser(shop_app)


def test_catalogue_lists_the_seeded_products(browser):
    html = browser.page("/")
    assert len(re.findall(r'<li class="card', html)) == len(CATALOGUE) == 12
    assert html.count(">Sold out</button>") == 1
    assert "$12.50" in html
    assert browser.badge() == "0"
    assert browser.client.get_cookie("guest_cart_id") is None


def test_product_page_and_unknown_product(browser):
    html = browser.page("/products/fountain-pen")
    assert "Fountain pen" in html and "$38.00" in html and "8 in stock" in html
    assert browser.get("/products/nope").status_code == 404
    assert "Sold out" in browser.page("/products/vinyl-record")


def test_demo_users_are_shown_on_the_login_page(browser):
    html = browser.page("/login")
    for email, password, _ in DEMO_USERS:
        assert email in html and password in html


def test_add_update_remove_and_empty_without_javascript(browser):
    response = browser.add("enamel-mug", 2)
    assert response.status_code == 303 and response.location == "/"
    assert browser.client.get_cookie("guest_cart_id") is not None
    assert "Added 2 \u00d7 Enamel mug to your cart." in browser.page("/")
    browser.add("notebook")
    assert browser.lines() == {"enamel-mug": 2, "notebook": 1}
    assert browser.badge() == "3"

    response = browser.set("enamel-mug", 5)
    assert response.status_code == 303 and response.location == "/basket"
    html = browser.page("/basket")
    assert browser.lines(html) == {"enamel-mug": 5, "notebook": 1}
    assert "$76.50" in html and "Enamel mug: quantity set to 5." in html

    assert browser.remove("enamel-mug").status_code == 303
    html = browser.page("/basket")
    assert "Removed Enamel mug from your cart." in html
    assert browser.lines(html) == {"notebook": 1}
    browser.set("notebook", 0)
    assert browser.lines() == {}
    browser.add("jigsaw")
    assert browser.empty().status_code == 303
    assert browser.lines() == {}
    assert "Your cart is empty" in browser.page("/basket")


def test_form_posts_redirect_back_to_this_site_only(browser):
    response = browser.add("notebook", next="/products/notebook")
    assert response.status_code == 303 and response.location.endswith("/products/notebook")
    response = browser.add("notebook", next="https://evil.example/")
    assert response.status_code == 303 and "evil" not in response.location


def test_stock_limits_and_bad_input_are_refused_with_a_message(browser):
    browser.add("wool-socks", 3)
    browser.add("wool-socks", 1)
    assert "Only 3 of Wool socks in stock" in browser.page("/")
    assert browser.lines() == {"wool-socks": 3}
    browser.add("vinyl-record")
    html = browser.page("/")
    assert "Vinyl record" in html and 'class="flash flash-error"' in html
    browser.add("no-such-thing")
    html = browser.page("/")
    assert "no-such-thing" not in html and 'class="flash flash-error"' in html
    browser.add("notebook", "2.5")
    assert "whole number" in browser.page("/")
    browser.set("wool-socks", 4)
    assert "Only 3 of Wool socks in stock" in browser.page("/")
    assert browser.lines() == {"wool-socks": 3}


def test_a_refused_quantity_shows_what_the_cart_holds_and_why(browser):
    """7 socks typed where 3 are in stock (no JavaScript): the box shows the 3 the cart holds,
    and the line says why the 7 was refused."""
    browser.add("wool-socks", 3)
    html = browser.page("/basket")
    assert re.search(r'<form method="post" class="qty-form" data-cart-update novalidate', html)
    assert '<input type="hidden" name="next" value="/basket?line=wool-socks">' in html
    data = {"_method": "PATCH", "quantity": "7", "next": "/basket?line=wool-socks"}
    response = browser.post("/cart/items/wool-socks", data)
    assert response.status_code == 303 and response.location == "/basket?line=wool-socks"
    html = browser.page(response.location)
    assert browser.lines(html) == {"wool-socks": 3}
    assert "Only 3 of Wool socks in stock: your cart still has 3." in html
    assert re.search(r'aria-invalid="true">\s*<button', html)
    # The note belongs to the refusal: a plain visit of the cart page has none.
    html = browser.page("/basket?line=wool-socks")
    assert "your cart still has" not in html and 'aria-invalid="true"' not in html
    browser.set("wool-socks", 2)
    html = browser.page("/basket?line=wool-socks")
    assert browser.lines(html) == {"wool-socks": 2} and "your cart still has" not in html


def test_a_post_without_the_csrf_token_changes_nothing(browser):
    response = browser.client.post("/cart/items", data={"product_id": "notebook"})
    assert response.status_code == 403
    assert browser.lines() == {}


@pytest.mark.parametrize("path", ["/cart/items", "/checkout", "/login", "/logout"])
def test_a_missing_or_bad_csrf_token_is_a_friendly_403_page(browser, path):
    for token in (None, "not-a-token"):
        data = {"product_id": "notebook", "email": "a@example.com", "password": "x"}
        if token:
            data["csrf_token"] = token
        response = browser.client.post(path, data=data)
        assert response.status_code == 403, (path, response.status_code)
        assert response.mimetype == "text/html"
        html = response.text
        assert "This page has expired" in html and "Nothing was changed." in html
        assert "The CSRF token" not in html  # not Flask-WTF's raw text
    assert browser.lines() == {}


def test_a_json_request_without_the_csrf_token_is_a_403_csrf_failed(browser):
    for headers in ({}, {"X-CSRFToken": "not-a-token"}):
        response = browser.client.post(
            "/cart/items", json={"product_id": "notebook"}, headers=headers
        )
        assert response.status_code == 403
        assert response.get_json()["error"]["code"] == "csrf_failed"
        assert response.get_json()["error"]["message"]
        response = browser.client.patch(
            "/cart/items/notebook",
            json={"quantity": 2},
            headers={"Accept": "application/json", **headers},
        )
        assert response.status_code == 403
        assert response.get_json()["error"]["code"] == "csrf_failed"
    assert browser.lines() == {}


def test_price_change_is_flashed_on_the_cart_page(shop_app, browser):
    browser.add("desk-lamp")
    with shop_app.app_context():
        db.session.get(Product, "desk-lamp").price = Decimal("49.00")
        db.session.commit()
    html = browser.page("/basket")
    assert "The price of Desk lamp changed from $59.00 to $49.00." in html
    assert '<s class="old-price">$59.00</s>' in html
    # Said once; the line keeps its note.
    html = browser.page("/basket")
    assert "The price of Desk lamp changed" not in html and "new price" in html


def test_register_keeps_the_guest_cart_and_logs_in(shop_app, browser):
    browser.add("green-tea", 2)
    browser.get("/register")
    response = browser.post(
        "/register",
        {
            "name": "Carol",
            "email": "carol@example.com",
            "password": "s3cret-pw",
            "confirm": "s3cret-pw",
        },
    )
    assert response.status_code == 303
    assert "Hi, Carol" in browser.page("/")
    assert browser.lines() == {"green-tea": 2}
    with shop_app.app_context():
        assert db.session.query(User).filter_by(email="carol@example.com").one()


def test_register_refuses_a_taken_email(browser):
    browser.get("/register")
    response = browser.post(
        "/register",
        {"name": "A", "email": DEMO_USERS[0][0], "password": "whatever1", "confirm": "whatever1"},
    )
    assert response.status_code == 422
    assert "log in instead" in response.get_data(as_text=True)


def test_login_merges_the_guest_cart_and_says_so(browser):
    alice = Browser(browser.client.application)
    alice.log_in()
    alice.add("notebook")
    browser.add("notebook")
    browser.add("coffee-beans")
    response = browser.log_in()
    assert response.status_code == 303
    html = browser.page("/")
    assert "2 items from your guest cart were added" in html
    assert browser.badge() == "3"
    assert browser.lines() == {"notebook": 2, "coffee-beans": 1}


def test_a_merge_cut_short_by_the_stock_says_what_was_left_out(shop_app, browser):
    """Alice has 2 pairs of socks; her guest cart 2 more; 3 exist: 1 moves, and she is told
    the other did not, and why. A product sold out meanwhile is named as left out."""
    alice = Browser(shop_app)
    alice.log_in()
    alice.add("wool-socks", 2)
    browser.add("wool-socks", 2)
    browser.add("desk-lamp")
    browser.add("notebook")
    with shop_app.app_context():
        db.session.get(Product, "desk-lamp").stock = 0
        db.session.commit()
    browser.log_in()
    html = browser.page("/basket")
    assert "2 items from your guest cart were added to your cart." in html
    assert (
        "Wool socks: only 1 of the 2 in your guest cart could be added: only 3 in stock, "
        "and your cart has 3." in html
    )
    assert "Desk lamp (1 in your guest cart) was left out of your cart: it is out of stock." in html
    assert browser.lines(html) == {"wool-socks": 3, "notebook": 1}


def test_a_merge_that_adds_nothing_of_a_line_says_so(shop_app, browser):
    alice = Browser(shop_app)
    alice.log_in()
    alice.add("wool-socks", 3)
    browser.add("wool-socks", 1)
    browser.log_in()
    html = browser.page("/")
    assert "from your guest cart were added" not in html
    assert "from your guest cart was added" not in html
    assert (
        "Wool socks: none of the 1 in your guest cart could be added: only 3 in stock, "
        "and your cart has 3." in html
    )


def test_wrong_password_and_logout(browser):
    response = browser.log_in(password="nope-nope")
    assert response.status_code == 422
    assert "Wrong e-mail or password" in response.get_data(as_text=True)
    browser.log_in()
    browser.add("notebook")
    assert browser.post("/logout").status_code == 303
    assert "Log in" in browser.page("/") and browser.badge() == "0"
    browser.log_in()
    assert browser.lines() == {"notebook": 1}


def test_checkout_stores_the_order_of_a_customer(shop_app, browser):
    browser.add("jigsaw")
    browser.add("plant-pot", 2)
    browser.log_in()
    html = browser.page("/checkout")
    assert "Place order ($44.39)" in html and "alice@example.com" in html
    response = browser.place_order(browser.review())
    assert response.status_code == 303
    html = browser.page(response.location)
    assert "Thank you! Order #1 is placed." in html
    assert "1000-piece jigsaw" in html and "$44.39" in html and "by Alice" in html
    assert browser.lines() == {}
    assert browser.badge() == "0"
    with shop_app.app_context():
        order = db.session.get(Order, 1)
        assert order.total == Decimal("44.39")
        assert order.email == "alice@example.com" and order.user.name == "Alice"
        assert {line.product_id: line.quantity for line in order.lines} == {
            "jigsaw": 1,
            "plant-pot": 2,
        }
        assert db.session.get(Product, "plant-pot").stock == 33
    assert "#1" in browser.page("/orders")
    # An empty cart cannot be checked out; another customer cannot see the order.
    assert browser.get("/checkout").status_code == 303
    bob = Browser(shop_app)
    bob.log_in(*DEMO_USERS[1][:2])
    assert bob.get("/orders/1").status_code == 404


def test_a_guest_checks_out_with_an_email_address(shop_app, browser):
    browser.add("green-tea", 2)
    html = browser.page("/checkout")
    assert "E-mail for the order confirmation" in html and "Place order ($19.50)" in html
    review = browser.review()
    # No e-mail address, or a bad one: the review again, nothing ordered.
    response = browser.place_order(review)
    assert response.status_code == 422
    assert "Enter an e-mail address for your order confirmation." in response.text
    response = browser.place_order(review, email="not an address")
    assert response.status_code == 422 and "Enter an e-mail address." in response.text
    assert browser.client.get_cookie("guest_cart_id") is not None

    response = browser.place_order(review, email="Guest@Example.com ")
    assert response.status_code == 303 and response.location == "/orders/1"
    # flask-cart cleared the guest cookie with the cart; the order is this browser's to see.
    assert browser.client.get_cookie("guest_cart_id") is None
    html = browser.page("/orders/1")
    assert "Thank you! Order #1 is placed." in html
    assert "The confirmation goes to guest@example.com" in html
    assert "guest@example.com (guest)" in html and "$19.50" in html
    assert "You ordered as a guest" in html
    assert "All your orders" not in html
    assert browser.lines() == {} and browser.badge() == "0"
    with shop_app.app_context():
        order = db.session.get(Order, 1)
        assert order.user_id is None and order.email == "guest@example.com"
        assert order.total == Decimal("19.50")
        assert db.session.get(Product, "green-tea").stock == 28
    # Another browser (or a logged-in customer) does not see a guest's order.
    assert Browser(shop_app).get("/orders/1").status_code == 404
    bob = Browser(shop_app)
    bob.log_in(*DEMO_USERS[1][:2])
    assert bob.get("/orders/1").status_code == 404
    # A new guest cart afterwards starts afresh, with a new cookie.
    browser.add("notebook")
    assert browser.lines() == {"notebook": 1}


def test_a_change_between_review_and_order_shows_the_review_again(shop_app, browser):
    """Device A reviews one pot; device B makes it two; A's "Place order" orders nothing and
    shows the fresh cart; A's second order is exactly what A confirmed the second time."""
    device_a, device_b = browser, Browser(shop_app)
    device_a.log_in()
    device_b.log_in()
    device_a.add("plant-pot")
    device_a.add("notebook")
    first = device_a.review()
    assert "Place order ($25.20)" in device_a.page("/checkout")
    assert device_b.set("plant-pot", 2).status_code == 303

    response = device_a.place_order(first)
    assert response.status_code == 409
    html = response.text
    assert "Your cart changed since you reviewed it" in html
    assert "Nothing was ordered and nothing was charged" in html
    assert "was 1" in html and "Place order ($36.40)" in html
    with shop_app.app_context():
        assert db.session.query(Order).count() == 0
        assert db.session.get(Product, "plant-pot").stock == 35
    assert device_b.lines() == {"plant-pot": 2, "notebook": 1}

    # The old token stays refused; the review it was shown now is what gets ordered.
    assert device_a.place_order(first).status_code == 409
    second = dict(re.findall(r'name="(cart_token|reviewed)" type="hidden" value="([^"]*)"', html))
    assert second["cart_token"] != first["cart_token"]
    response = device_a.place_order(second)
    assert response.status_code == 303
    with shop_app.app_context():
        order = db.session.query(Order).one()
        assert order.total == Decimal("36.40")
        assert {line.product_id: line.quantity for line in order.lines} == {
            "plant-pot": 2,
            "notebook": 1,
        }
    assert device_b.lines() == {}


def test_a_price_change_between_review_and_order_is_not_charged(shop_app, browser):
    browser.add("desk-lamp")
    review = browser.review()
    with shop_app.app_context():
        db.session.get(Product, "desk-lamp").price = Decimal("64.00")
        db.session.commit()
    response = browser.place_order(review, email="guest@example.com")
    assert response.status_code == 409
    assert "Your cart changed since you reviewed it" in response.text
    assert "was $59.00" in response.text and "Place order ($64.00)" in response.text
    assert browser.client.get_cookie("guest_cart_id") is not None
    with shop_app.app_context():
        assert db.session.query(Order).count() == 0
    assert browser.lines() == {"desk-lamp": 1}


def test_a_line_removed_elsewhere_is_named_on_the_new_review(shop_app, browser):
    other = Browser(shop_app)
    browser.log_in()
    other.log_in()
    browser.add("notebook")
    browser.add("jigsaw")
    review = browser.review()
    other.remove("jigsaw")
    response = browser.place_order(review)
    assert response.status_code == 409
    assert "No longer in your cart: 1000-piece jigsaw." in response.text
    # Emptied (or ordered) elsewhere: the orders page, saying so.
    other.remove("notebook")
    response = browser.place_order(review)
    assert response.status_code == 303 and response.location == "/orders"
    assert "Your cart is empty: was it checked out on another device?" in browser.page("/orders")


def test_a_stock_drop_between_review_and_order_is_not_ordered(shop_app, browser):
    browser.add("fountain-pen", 3)
    review = browser.review()
    with shop_app.app_context():
        db.session.get(Product, "fountain-pen").stock = 2
        db.session.commit()
    response = browser.place_order(review, email="guest@example.com")
    assert response.status_code == 409
    assert "Only 2 of Fountain pen left in stock" in response.text
    assert "Place order" not in response.text
    with shop_app.app_context():
        assert db.session.query(Order).count() == 0
        assert db.session.get(Product, "fountain-pen").stock == 2


def test_the_qa_page_is_out_of_the_shoppers_way(browser):
    html = browser.page("/")
    nav = re.search(r'<nav class="nav".*?</nav>', html, re.S).group(0)
    assert "/status" not in nav and "Cart status" not in nav
    footer = re.search(r'<footer class="site-footer">.*?</footer>', html, re.S).group(0)
    assert re.search(r'<a class="qa-link" href="/status"[^>]*>QA: cart status</a>', footer)


def test_cart_status_page(browser):
    html = browser.page("/status")
    assert "Cart status" in html and "guest without a cart yet" in html
    browser.add("notebook")
    html = browser.page("/status")
    assert "guest (signed guest_cart_id cookie)" in html
    assert re.search(r"<dt>Version \(this page\)</dt>\s*<dd>1<", html)
    assert re.search(r"<dt>Version \(store now\)</dt>\s*<dd>1<", html)
    assert "Sync age" in html and ("SQLStore" in html or "RedisStore" in html)
    browser.log_in()
    assert "customer alice@example.com" in browser.page("/status")


def test_the_json_routes_take_the_csrf_header(browser):
    browser.get("/")
    response = browser.client.post(
        "/cart/items",
        json={"product_id": "notebook", "quantity": 2},
        headers={"X-CSRFToken": browser.token},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["quantity"] == 2
    assert browser.badge() == "2"


def test_a_database_of_an_older_demo_is_refused_with_what_to_do(tmp_path):
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE demo_order (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    with pytest.raises(RuntimeError, match="predates guest checkout"):
        create_app({"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": url})


@pytest.mark.parametrize("shop_app", ["sqlite"], indirect=True)  # Redis: not in the transaction
def test_the_order_and_the_carts_removal_roll_back_together(shop_app, browser):
    """SQL store: the cart is removed in the order's transaction. A failure after the removal
    (here a `cart_checked_out` receiver that raises, as a declined payment would) leaves no
    order, the stock untouched and the cart whole."""
    from flask_cart import signals

    def declined(sender: Any, **extra: Any) -> None:
        raise RuntimeError("payment declined")

    browser.log_in()
    browser.add("plant-pot", 2)
    review = browser.review()
    signals.cart_checked_out.connect(declined, shop_app)
    try:
        with pytest.raises(RuntimeError, match="payment declined"):
            browser.place_order(review)
    finally:
        signals.cart_checked_out.disconnect(declined, shop_app)
    with shop_app.app_context():
        assert db.session.query(Order).count() == 0
        assert db.session.get(Product, "plant-pot").stock == 35
    assert browser.lines() == {"plant-pot": 2}
    # And the same review goes through once the failure is gone.
    assert browser.place_order(browser.review()).status_code == 303
    assert browser.lines() == {}


@pytest.mark.parametrize("extra_config", [{"DEMO_QA": True}])
def test_abandoned_qa_page_lists_a_due_cart_and_the_receiver_logs_the_email(
    shop_app: Any, browser: Browser, caplog: Any
) -> None:
    """A customer cart aged past 1 h shows on the QA page (a dry run: nothing recorded);
    the real run's cart_abandoned reaches the demo's receiver, which logs the e-mail."""
    import logging
    from datetime import timedelta

    from tests.test_cleanup import age_cart

    browser.log_in()
    browser.add("enamel-mug", 2)
    carts = shop_app.extensions["cart"]
    with shop_app.app_context():
        store = carts.get_store()
        user = db.session.execute(db.select(User).filter_by(email=DEMO_USERS[0][0])).scalar_one()
        from flask_cart.stores.base import CartKey

        age_cart(store, CartKey(f"customer:{user.id}"), timedelta(hours=2))
    html = browser.page("/status/abandoned")
    assert f"customer:{user.id}" in html and ">1h<" in html and "/cart/recover/" in html
    assert "QA: abandoned carts" in browser.page("/status")
    shop_app.config["SERVER_NAME"] = "localhost"
    with caplog.at_level(logging.INFO, logger="demo_app.abandoned"):
        result = shop_app.test_cli_runner().invoke(args=["cart", "abandoned"])
    assert result.exit_code == 0, result.output
    assert "reported 1 cart" in result.output
    assert DEMO_USERS[0][0] in caplog.text and "/cart/recover/" in caplog.text
    assert f"customer:{user.id}" not in browser.page("/status/abandoned")  # reported for 1h
    again = shop_app.test_cli_runner().invoke(args=["cart", "abandoned"])
    assert "reported 0 carts" in again.output


# -- the cart as a shopper sees it -------------------------------------------------------

#: A browser may serve its cached copy for 30 s (the default): the stale copy the cart page
#: must not show.
SYNCED = pytest.mark.parametrize("extra_config", [{"CART_SYNC_SECONDS": 30}])


def text_of(html: str) -> str:
    """The page's words, without tags and with single spaces."""
    return " ".join(re.sub(r"<[^>]+>", "", html).split())


@SYNCED
def test_the_cart_page_shows_the_stores_cart_and_names_a_line_removed_on_another_device(
    shop_app, browser
):
    device_a, device_b = browser, Browser(shop_app)
    device_a.log_in()
    device_a.add("enamel-mug", 4)
    device_a.add("notebook")
    device_b.log_in()
    assert device_b.lines() == {"enamel-mug": 4, "notebook": 1}

    assert device_a.remove("enamel-mug").status_code == 303
    html = device_b.page("/basket")
    assert device_b.lines(html) == {"notebook": 1}
    assert "Enamel mug was removed on another device." in html
    assert re.search(r"data-cart-badge>1<", html)
    # Said once: the next visit has nothing new to tell.
    html = device_b.page("/basket")
    assert "on another device" not in html and device_b.lines(html) == {"notebook": 1}


@SYNCED
def test_a_refused_change_of_a_line_removed_elsewhere_shows_the_stores_cart(shop_app, browser):
    """No "your cart still has 4" for a line that is gone: the page comes back with the
    store's cart and says what happened."""
    device_a, device_b = browser, Browser(shop_app)
    device_a.log_in()
    device_a.add("enamel-mug", 4)
    device_a.add("notebook")
    device_b.log_in()
    assert device_b.lines() == {"enamel-mug": 4, "notebook": 1}
    device_a.remove("enamel-mug")

    data = {"_method": "PATCH", "quantity": "5", "next": "/basket?line=enamel-mug"}
    response = device_b.post("/cart/items/enamel-mug", data)
    assert response.status_code == 303
    html = device_b.page(response.location)
    assert "still has" not in html
    assert device_b.lines(html) == {"notebook": 1}
    assert "Enamel mug was removed on another device." in html
    assert "enamel-mug" not in text_of(html)


@SYNCED
def test_the_cart_page_says_the_cart_was_checked_out_on_another_device(shop_app, browser):
    device_a, device_b = browser, Browser(shop_app)
    device_a.log_in()
    device_a.add("notebook", 2)
    device_b.log_in()
    assert device_b.lines() == {"notebook": 2}
    assert device_a.place_order(device_a.review()).status_code == 303

    html = device_b.page("/basket")
    assert device_b.lines(html) == {}
    assert "Your cart was checked out on another device (order #1)." in html
    assert re.search(r"data-cart-badge>0<", html)
    assert re.search(r"data-cart-empty\s*>", html)  # shown, not hidden


@SYNCED
def test_the_store_copy_of_the_cart_is_what_a_json_refusal_reads_back(shop_app, browser):
    """The script's re-read after a refused change (GET /basket/fresh) is the store's cart,
    not the browser's copy."""
    device_a, device_b = browser, Browser(shop_app)
    device_a.log_in()
    device_a.add("enamel-mug", 4)
    device_b.log_in()
    assert device_b.lines() == {"enamel-mug": 4}
    device_a.set("enamel-mug", 2)
    response = device_b.get("/basket/fresh", headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert [(i["product_id"], i["quantity"]) for i in response.get_json()["items"]] == [
        ("enamel-mug", 2)
    ]


def test_one_unit_reads_1_item_never_1_items(shop_app, browser):
    browser.add("notebook")
    for path in ("/basket", "/checkout"):
        words = text_of(browser.page(path))
        assert "1 items" not in words, path
        assert "(1 item)" in words, path
    browser.add("notebook")
    assert "(2 items)" in text_of(browser.page("/basket"))
    browser.set("notebook", 1)
    response = browser.place_order(browser.review(), email="guest@example.com")
    words = text_of(browser.page(response.location))
    assert "(1 item)" in words and "1 items" not in words


def test_a_product_id_is_never_shown_as_an_error(browser):
    browser.add("no-such-thing")
    html = browser.page("/")
    assert "no-such-thing" not in html
    assert 'class="flash flash-error" role="alert">' in html


def test_the_line_cap_reads_as_a_shopper_would_say_it(browser):
    browser.add("enamel-mug", 1000)
    words = text_of(browser.page("/"))
    assert "You can have at most 999 of one item." in words
    assert "per line" not in words


def test_the_guest_order_page_speaks_no_cookie_jargon(browser):
    browser.add("green-tea")
    response = browser.place_order(browser.review(), email="guest@example.com")
    words = text_of(browser.page(response.location)).lower()
    assert "cookie" not in words and "session" not in words
    assert "you ordered as a guest" in words


@pytest.mark.parametrize(
    ("method", "path", "status", "heading"),
    [
        ("GET", "/no/such/page", 404, "We could not find that page"),
        ("GET", "/products/nope", 404, "We could not find that page"),
        ("GET", "/logout", 405, "That did not work"),
    ],
)
def test_a_missing_page_or_a_wrong_method_is_a_page_of_the_shop(
    browser, method, path, status, heading
):
    response = browser.client.open(path, method=method, headers={"Accept": "text/html"})
    assert response.status_code == status
    assert response.mimetype == "text/html"
    html = response.text
    assert heading in html
    assert 'class="site-header"' in html  # the shop's layout
    assert "Werkzeug" not in html and "<title>404 Not Found</title>" not in html


def test_a_server_error_is_a_page_of_the_shop(shop_app):
    shop_app.config.update(TESTING=False, PROPAGATE_EXCEPTIONS=False)

    def broken() -> str:
        raise RuntimeError("secret detail: db at 10.0.0.7:5432")

    shop_app.add_url_rule("/broken", "broken", broken)
    response = shop_app.test_client().get("/broken", headers={"Accept": "text/html"})
    assert response.status_code == 500
    assert response.mimetype == "text/html"
    html = response.text
    assert "Something went wrong on our side" in html and 'class="site-header"' in html
    assert "10.0.0.7" not in html and "Traceback" not in html and "RuntimeError" not in html


def test_the_library_pages_wear_the_shops_layout(shop_app, browser):
    html = browser.get(
        "/cart/link/notebook:abc",
        headers={"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"},
        follow_redirects=True,
    ).text
    assert 'class="site-header"' in html
    assert "{" not in text_of(html)  # no JSON body in front of the shopper


def test_demo_port_in_use_names_demo_port_in_one_line(tmp_path):
    import os
    import socket
    import subprocess
    import sys

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    env = {
        **os.environ,
        "DEMO_PORT": str(port),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'shop.sqlite3'}",
        "SECRET_KEY": "demo-port-test",
    }
    env.pop("CART_STORE", None)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "demo_app"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
    finally:
        busy.close()
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert f"port {port} is in use" in lines[0] and "DEMO_PORT=" in lines[0]
    assert "make demo" in lines[0]


def test_the_checkout_offers_to_remove_lines_that_are_not_sold_any_more(shop_app, browser):
    browser.add("desk-lamp")
    browser.add("notebook")
    with shop_app.app_context():
        db.session.delete(db.session.get(Product, "desk-lamp"))
        db.session.commit()
    html = browser.page("/checkout")
    assert "Desk lamp is no longer sold" in html
    assert "Place order" not in html
    assert 'action="/checkout/remove-unavailable"' in html
    response = browser.post("/checkout/remove-unavailable")
    assert response.status_code == 303 and response.location == "/checkout"
    html = browser.page(response.location)
    assert "Removed Desk lamp from your cart: it is no longer sold." in html
    assert "Place order ($14.00)" in html
    assert browser.lines() == {"notebook": 1}


# -- a cart store that is down -------------------------------------------------------------

DEAD_REDIS = "redis://127.0.0.1:1/0"
SERVER_DETAILS = ("127.0.0.1", "Error 111", "Connection refused", "redis://", "6379")


def assert_no_server_detail(text: str) -> None:
    for detail in SERVER_DETAILS:
        assert detail not in text, detail
    assert "Traceback" not in text


@pytest.fixture
def shop_on_dead_redis(tmp_path: Any, redis_client: Any) -> Any:
    """(shop, browser, dead shop): a cart built on the real Redis; the dead shop is the same
    shop (database, secret key, key prefix) with its Redis at a closed port."""
    prefix = f"fc_demo_{uuid.uuid4().hex[:12]}:"
    url = redis_client.connection_pool.connection_kwargs
    config: dict[str, Any] = {
        "TESTING": True,
        "SECRET_KEY": "demo-dead-store",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'shop.sqlite3'}",
        "CART_STORE": "redis",
        "CART_REDIS_URL": f"redis://{url['host']}:{url['port']}/{url.get('db', 0)}",
        "CART_KEY_PREFIX": prefix,
        "CART_SYNC_SECONDS": 1,
        "CART_STORE_TIMEOUT": 30,
    }
    try:
        alive = create_app(config)
        dead = create_app({**config, "CART_REDIS_URL": DEAD_REDIS})
        yield alive, Browser(alive), dead
    finally:
        delete_keys(redis_client, prefix)


@pytest.mark.redis
@pytest.mark.parametrize("who", ["guest", "customer"])
def test_a_store_that_is_down_leaves_the_shop_open_and_says_the_cart_is_unavailable(
    shop_on_dead_redis, who
):
    _alive, browser, dead = shop_on_dead_redis
    if who == "customer":
        browser.log_in()
    browser.add("enamel-mug", 2)
    assert browser.badge() == "2"
    browser.client.application = dead  # the same browser, its shop's Redis gone
    time.sleep(1.1)  # past the sync window: the pages ask the store

    for path in ("/", "/products/notebook"):
        response = browser.get(path)
        assert response.status_code == 200, (path, response.status_code)
        html = response.text
        assert re.search(r"data-cart-badge[^>]*>cart unavailable<", html), path
        assert_no_server_detail(html)

    # A form post (no JavaScript): back to the page, saying the cart is unavailable.
    response = browser.add("notebook", next="/products/notebook")
    assert response.status_code in (303, 503), response.status_code
    html = browser.page(response.location) if response.status_code == 303 else response.text
    assert response.mimetype == "text/html"
    assert "unavailable" in html.lower()
    assert '"error"' not in html
    assert_no_server_detail(html)

    # The cart page: the browser's last copy, saying it may be out of date; no checkout.
    response = browser.get("/basket")
    assert response.status_code == 200
    html = response.text
    assert "data-cart-unavailable" in html
    assert "Check out</a>" not in html
    assert_no_server_detail(html)
    response = browser.get("/checkout")
    assert response.status_code == 503 and response.mimetype == "text/html"
    assert "Place order" not in response.text and "data-cart-unavailable" in response.text
    assert_no_server_detail(response.text)


def test_removing_what_is_no_longer_sold_needs_the_forms_token_and_a_post(shop_app, browser):
    browser.add("desk-lamp")
    with shop_app.app_context():
        db.session.delete(db.session.get(Product, "desk-lamp"))
        db.session.commit()
    response = browser.client.post("/checkout/remove-unavailable")
    assert response.status_code == 403 and "This page has expired" in response.text
    response = browser.get("/checkout/remove-unavailable")
    assert response.status_code == 405 and "That did not work" in response.text
    assert browser.lines() == {"desk-lamp": 1}


@SYNCED
def test_the_page_shown_after_a_refused_add_counts_the_stores_cart(shop_app, browser):
    device_a, device_b = browser, Browser(shop_app)
    device_a.log_in()
    device_a.add("enamel-mug", 4)
    device_b.log_in()
    assert device_b.badge() == "4"
    device_a.add("notebook")
    response = device_b.add("wool-socks", 4, next="/products/wool-socks")
    assert response.status_code == 303
    html = device_b.page(response.location)
    assert 'class="flash flash-error"' in html
    assert re.search(r"data-cart-badge>5<", html)


# -- QA: abandoned carts, their reminders and the outbox ---------------------------------


def qa_config(tmp_path: Any) -> dict[str, Any]:
    return {"DEMO_QA": True, "SERVER_NAME": "localhost", "DEMO_OUTBOX": str(tmp_path / "outbox")}


@pytest.fixture
def qa_app(shop_app: Any, tmp_path: Any) -> Any:
    shop_app.config.update(qa_config(tmp_path))
    return shop_app


def age_guest_cart(app: Any, browser: Browser, hours: float = 2) -> str:
    """Make this browser's cart look idle for `hours` (its identifier, from /status)."""
    from datetime import timedelta

    from flask_cart.stores.base import CartKey
    from tests.test_cleanup import age_cart

    found = re.search(r"<dt>Cart identifier</dt>\s*<dd>([^<]+)<", browser.page("/status"))
    assert found, "no cart yet"
    identifier = found.group(1)
    with app.app_context():
        age_cart(app.extensions["cart"].get_store(), CartKey(identifier), timedelta(hours=hours))
    return identifier


def test_the_abandoned_carts_page_is_404_without_demo_qa(shop_app, browser):
    """It shows every abandoned cart's address and live recovery link: QA only."""
    browser.add("notebook")
    browser.post("/basket/save", {"email": "ann@example.com"})
    browser.page("/basket")  # the flashed message
    assert shop_app.config["DEMO_QA"] is False
    response = browser.get("/status/abandoned")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "ann@example.com" not in response.text and "/cart/recover/" not in response.text
    assert browser.post("/status/abandoned/send").status_code == 404
    assert "QA: abandoned carts" not in browser.page("/status")


def test_demo_qa_and_the_stages_and_host_come_from_the_environment():
    from demo_app.config import from_environment

    config = from_environment(
        {"DEMO_QA": "1", "DEMO_ABANDONED_STAGES": "30s, 2m", "DEMO_SERVER_NAME": "127.0.0.1:5000"}
    )
    assert config == {
        "DEMO_QA": True,
        "CART_ABANDONED_STAGES": ["30s", "2m"],
        "SERVER_NAME": "127.0.0.1:5000",
    }
    assert from_environment({"DEMO_QA": "0"}) == {"DEMO_QA": False}
    for bad in ("soon", "0s", "30s,30s"):
        with pytest.raises(SystemExit, match="DEMO_ABANDONED_STAGES"):
            from_environment({"DEMO_ABANDONED_STAGES": bad})


def test_the_save_my_cart_box_keeps_the_guests_address(qa_app, browser):
    browser.add("notebook")
    assert 'action="/basket/save"' in browser.page("/basket")
    response = browser.post("/basket/save", {"email": "  ann@example.com "})
    assert response.status_code == 303 and response.location.endswith("/basket")
    assert "we will send a link to ann@example.com" in browser.page("/basket")
    age_guest_cart(qa_app, browser)
    html = browser.page("/status/abandoned")
    assert re.search(r'data-field="email">ann@example.com<', html)


@pytest.mark.parametrize("bad", ["not-an-address", "a@b", "x" * 300 + "@example.com", ""])
def test_a_bad_address_in_the_save_my_cart_box_is_refused_and_keeps_the_old_one(
    qa_app, browser, bad
):
    browser.add("notebook")
    browser.post("/basket/save", {"email": "ann@example.com"})
    response = browser.post("/basket/save", {"email": bad})
    assert response.status_code == 303
    page = browser.page("/basket")
    assert "Please enter a valid e-mail address" in page
    age_guest_cart(qa_app, browser)
    assert re.search(r'data-field="email">ann@example.com<', browser.page("/status/abandoned"))


def test_a_customer_has_no_save_my_cart_box(qa_app, browser):
    browser.log_in()
    browser.add("notebook")
    assert 'action="/basket/save"' not in browser.page("/basket")


def test_the_send_button_puts_one_reminder_in_the_outbox_with_its_links(qa_app, browser):
    """Guest saves an address, the cart ages past 1h; "Send reminders now" runs `flask cart
    abandoned --send`: one e-mail in the outbox, with List-Unsubscribe and working links;
    a second run sends nothing."""
    browser.add("enamel-mug", 2)
    browser.post("/basket/save", {"email": "ann@example.com"})
    age_guest_cart(qa_app, browser)
    html = browser.page("/status/abandoned")
    assert "No e-mail yet." in html
    response = browser.post("/status/abandoned/send")
    assert response.status_code == 303 and response.location.endswith("/status/abandoned")
    html = browser.page("/status/abandoned")
    assert "sent 1 reminder" in html, text_of(html)[:2000]
    assert "No e-mail yet." not in html
    assert "ann@example.com" in html
    assert "List-Unsubscribe-Post" in html and "List-Unsubscribe=One-Click" in html
    assert "You left something in your cart at Never-Lost Goods" in html
    links = re.findall(r'href="([^"]+)"[^>]*data-mail-link', html)
    assert any("/cart/recover/" in link for link in links)
    assert any("/cart/unsubscribe/" in link for link in links)
    recover = next(link for link in links if "/cart/recover/" in link)
    assert recover.startswith("http://localhost/")
    other = Browser(qa_app)
    page = other.get(recover.removeprefix("http://localhost"))
    assert page.status_code == 200 and "Enamel mug" in page.text
    assert browser.post("/status/abandoned/send").status_code == 303
    assert "sent 0 reminders" in browser.page("/status/abandoned")
    assert len(re.findall(r"<article class=\"mail\"", browser.page("/status/abandoned"))) == 1


def test_the_send_button_needs_the_forms_token(qa_app, browser):
    browser.add("notebook")
    browser.post("/basket/save", {"email": "ann@example.com"})
    age_guest_cart(qa_app, browser)
    response = browser.client.post("/status/abandoned/send")
    assert response.status_code == 403 and "This page has expired" in response.text
    assert "No e-mail yet." in browser.page("/status/abandoned")


def test_without_a_host_the_send_button_says_what_to_set(qa_app, browser):
    qa_app.config["SERVER_NAME"] = None
    browser.add("notebook")
    browser.post("/basket/save", {"email": "ann@example.com"})
    age_guest_cart(qa_app, browser)
    assert "DEMO_SERVER_NAME" in browser.page("/status/abandoned")
    browser.post("/status/abandoned/send")
    html = browser.page("/status/abandoned")
    assert "SERVER_NAME is not set" in html and "No e-mail yet." in html


def test_the_qa_page_shows_a_signed_campaign_link_that_adds_its_items(qa_app, browser):
    html = browser.page("/status/abandoned")
    link = re.search(r'href="([^"]+)"[^>]*data-campaign-link', html).group(1)
    assert link.startswith("http://localhost/cart/")
    shopper = Browser(qa_app)
    clicked = {
        "Sec-Fetch-Site": "none",
        "Sec-Fetch-Mode": "navigate",
        "Sec-Fetch-Dest": "document",
        "Sec-Fetch-User": "?1",
    }
    response = shopper.client.get(link.replace("&amp;", "&"), headers=clicked)
    assert response.status_code == 303, response.status_code
    assert shopper.lines() == {"coffee-beans": 1, "enamel-mug": 2}


def test_the_mails_one_click_unsubscribe_works_in_the_demo(qa_app, browser):
    """RFC 8058: the mailbox provider POSTs List-Unsubscribe=One-Click, with no cookie and no
    CSRF token; the demo's CSRF protection must let it through, and the cart is not
    reminded again."""
    browser.add("notebook")
    browser.post("/basket/save", {"email": "ann@example.com"})
    age_guest_cart(qa_app, browser)
    browser.post("/status/abandoned/send")
    html = browser.page("/status/abandoned")
    link = next(
        link
        for link in re.findall(r'href="([^"]+)"[^>]*data-mail-link', html)
        if "/cart/unsubscribe/" in link
    )
    provider = qa_app.test_client()
    path = link.removeprefix("http://localhost")
    assert provider.get(path).status_code == 200
    response = provider.post(path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200, response.text[:500]
    browser.add("notebook")  # a new version: due again once it ages, but unsubscribed
    age_guest_cart(qa_app, browser)
    browser.post("/status/abandoned/send")
    assert "sent 0 reminders" in browser.page("/status/abandoned")


def test_a_guests_checkout_address_stays_with_a_cart_not_ordered(qa_app, browser):
    """The guest's checkout address is kept with the cart: when the order is not placed
    (here the cart changed since the review), a reminder can still reach them."""
    browser.add("notebook")
    review = browser.review()
    browser.add("enamel-mug")
    response = browser.place_order(review, email="ann@example.com")
    assert response.status_code == 409 or "changed" in response.text
    with qa_app.app_context():
        assert db.session.query(Order).count() == 0
    age_guest_cart(qa_app, browser)
    assert re.search(r'data-field="email">ann@example.com<', browser.page("/status/abandoned"))
