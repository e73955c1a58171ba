"""End-to-end: what a shopper sees when the cart changes elsewhere, on a phone, and with the
cart store down. In real headless Chromium, on SQLite and Redis.

Two devices of one customer: an order placed on one, or a line removed there, is named on the
other's cart page (which shows the store's cart, not the browser's copy). A phone's "Add to
cart" far down the catalogue answers where the shopper is looking, with JavaScript and without.
With Redis gone, the shop stays open and says the cart is unavailable.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import serve
from tests.e2e.test_storefront import add_from_catalogue, badge, cart_lines, log_in

pytestmark = pytest.mark.e2e

SERVER_DETAILS = ("127.0.0.1:1", "Error 111", "Connection refused", "redis://", "Traceback")


def assert_in_view(page: Any, locator: Any) -> None:
    """The element is drawn wholly inside the window, where the shopper is looking."""
    expect(locator).to_be_visible()
    box = locator.bounding_box()
    size = page.viewport_size
    assert box is not None
    assert box["y"] >= 0 and box["y"] + box["height"] <= size["height"], (box, size)
    assert box["x"] >= 0 and box["x"] + box["width"] <= size["width"], (box, size)


def test_an_order_or_a_removal_on_one_device_is_named_on_the_other(shop, new_context, screenshot):
    laptop = new_context().new_page()
    log_in(laptop, shop)
    laptop.goto(shop("/"))
    add_from_catalogue(laptop, "jigsaw", 1)
    add_from_catalogue(laptop, "enamel-mug", 2)

    phone = new_context().new_page()
    log_in(phone, shop, then="/basket")
    assert cart_lines(phone) == {"jigsaw": 1, "enamel-mug": 1}

    # The mug removed on the laptop: the phone's cart page (still open) is told when it
    # changes that line, and the next visit names it.
    laptop.goto(shop("/basket"))
    laptop.locator('tr[data-line="enamel-mug"]').get_by_role("button", name="Remove").click()
    expect(laptop.locator('tr[data-line="enamel-mug"]')).to_have_count(0)
    mug = phone.locator('tr[data-line="enamel-mug"] input[name="quantity"]')
    mug.fill("3")
    mug.dispatch_event("change")
    expect(phone.locator(".flash-info")).to_have_text("Enamel mug was removed on another device.")
    expect(phone.locator('tr[data-line="enamel-mug"]')).to_have_count(0)
    expect(badge(phone)).to_have_text("1")
    expect(phone.get_by_text("still has")).to_have_count(0)
    screenshot(phone, "removed-in-place")

    laptop.goto(shop("/products/notebook"))
    laptop.get_by_role("button", name="Add to cart").click()
    expect(badge(laptop)).to_have_text("2")
    laptop.goto(shop("/basket"))
    laptop.locator('tr[data-line="notebook"]').get_by_role("button", name="Remove").click()
    expect(laptop.locator('tr[data-line="notebook"]')).to_have_count(0)
    phone.goto(shop("/basket"))
    # The phone never showed the notebook: nothing to say about it.
    expect(phone.locator("[data-cart-elsewhere]")).to_have_count(0)
    assert cart_lines(phone) == {"jigsaw": 1}

    # An order placed on the laptop: the phone's cart page says so and shows it empty.
    laptop.get_by_role("link", name="Check out").click()
    laptop.get_by_role("button", name="Place order").click()
    expect(laptop.get_by_role("heading", name="Order #")).to_be_visible()
    phone.goto(shop("/basket"))
    expect(phone.locator("[data-cart-elsewhere]")).to_have_text(
        "Your cart was checked out on another device (order #1)."
    )
    expect(phone.locator("[data-cart-empty]")).to_be_visible()
    expect(badge(phone)).to_have_text("0")
    screenshot(phone, "checked-out")
    phone.goto(shop("/checkout"))
    expect(phone.locator(".flash-info")).to_contain_text("Your cart is empty")


@pytest.mark.parametrize("width", ["phone"], indirect=True)
@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_an_add_far_down_a_phone_page_answers_where_the_shopper_is(
    shop, new_context, screenshot, javascript
):
    page = new_context(java_script_enabled=javascript).new_page()
    page.goto(shop("/"))
    card = page.locator('li[data-product="wool-socks"]')  # far down the page on a phone
    card.scroll_into_view_if_needed()
    assert page.evaluate("window.scrollY") > 600
    card.get_by_role("button", name="Add to cart").click()

    toast = page.locator(".flash-success")
    expect(toast).to_contain_text("Added 1 \u00d7 Wool socks to your cart.")
    assert_in_view(page, toast)
    assert page.evaluate("window.scrollY") > 600  # still where the shopper was
    link = toast.get_by_role("link", name="View cart (1 item)")
    assert_in_view(page, link)
    screenshot(page, "toast-js" if javascript else "toast-no-js", full_page=False)
    link.click()
    expect(page.get_by_role("heading", name="Your cart")).to_be_visible()
    assert cart_lines(page) == {"wool-socks": 1}


@pytest.mark.parametrize("shop", ["redis"], indirect=True)
def test_with_the_store_down_the_shop_stays_open_and_says_the_cart_is_unavailable(
    shop, new_context, screenshot, width
):
    from demo_app import create_app

    page = new_context().new_page()
    page.goto(shop("/"))
    add_from_catalogue(page, "enamel-mug", 1)
    same = (
        "SECRET_KEY",
        "SQLALCHEMY_DATABASE_URI",
        "CART_STORE",
        "CART_KEY_PREFIX",
        "CART_SYNC_SECONDS",
    )
    config = {key: shop.app.config[key] for key in same}
    sync = shop.app.config["CART_SYNC_SECONDS"]
    dead = create_app({**config, "CART_REDIS_URL": "redis://127.0.0.1:1/0"})
    time.sleep(sync + 0.1)  # past the browser's sync window: pages ask the store
    with serve(dead) as url:  # the same shop on another port, its Redis gone
        for path in ("/", "/products/notebook", "/basket"):
            response = page.goto(url + path)
            assert response.status == 200, path
            expect(badge(page)).to_have_text("cart unavailable")
            html = page.content()
            for detail in SERVER_DETAILS:
                assert detail not in html, (path, detail)
        expect(page.locator("[data-cart-unavailable]")).to_be_visible()
        expect(page.get_by_role("link", name="Check out")).to_have_count(0)
        screenshot(page, "basket-down")

        page.goto(url + "/products/notebook")
        page.get_by_role("button", name="Add to cart").click()
        expect(page.locator(".flash-error")).to_contain_text("unavailable")
        screenshot(page, "add-down")
        response = page.goto(url + "/checkout")
        assert response.status == 503
        expect(page.get_by_role("heading", name="Your cart is unavailable")).to_be_visible()
        expect(page.get_by_role("button", name="Place order")).to_have_count(0)
        screenshot(page, "checkout-down")


@pytest.mark.parametrize("shop", ["sqlite"], indirect=True)
def test_the_review_offers_to_remove_what_is_no_longer_sold(shop, new_context, screenshot):
    from demo_app.models import Product, db

    page = new_context().new_page()
    page.goto(shop("/"))
    add_from_catalogue(page, "desk-lamp", 1)
    add_from_catalogue(page, "notebook", 2)
    with shop.app.app_context():
        db.session.delete(db.session.get(Product, "desk-lamp"))
        db.session.commit()
    page.goto(shop("/checkout"))
    expect(page.locator(".problems")).to_contain_text("Desk lamp is no longer sold")
    expect(page.get_by_role("button", name="Place order")).to_have_count(0)
    screenshot(page, "unavailable-line")
    page.get_by_role("button", name="Remove what is no longer sold").click()
    expect(page.locator(".flash-info")).to_have_text(
        "Removed Desk lamp from your cart: it is no longer sold."
    )
    expect(page.get_by_role("button", name="Place order")).to_have_text("Place order ($14.00)")
    screenshot(page, "unavailable-removed")
