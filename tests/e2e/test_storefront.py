"""End-to-end: the demo shop in real headless Chromium, on SQLite and on Redis.

The five storefront scenarios: a guest cart survives the browser closing; logging in
merges it with the customer's cart from another device; a second device sees the same
cart after the sync window; checkout empties the cart on both devices; and the cart works
with JavaScript disabled. Each runs on a 1200 px window and a 390 px phone (the
`width` fixture), checks that no page scrolls sideways and saves screenshots in
tests/artifacts/.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

PASSWORD = "alice-demo"
ALICE = "alice@example.com"


def badge(page: Any) -> Any:
    return page.locator("[data-cart-badge]")


def add_from_catalogue(page: Any, product_id: str, units_after: int) -> None:
    """Click "Add to cart" on the catalogue and wait until the badge shows `units_after`."""
    page.locator(f'li[data-product="{product_id}"]').get_by_role(
        "button", name="Add to cart"
    ).click()
    expect(badge(page)).to_have_text(str(units_after))


def log_in(
    page: Any, shop: Any, email: str = ALICE, password: str = PASSWORD, then: str = "/"
) -> None:
    page.goto(shop(f"/login?next={then}"))
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".hello")).to_contain_text("Hi,")


def cart_lines(page: Any) -> dict[str, int]:
    """The cart page's lines: product id -> quantity shown."""
    rows = page.locator("tr[data-line]")
    return {
        rows.nth(i).get_attribute("data-line"): int(
            rows.nth(i).locator('input[name="quantity"]').input_value()
        )
        for i in range(rows.count())
    }


def mark_page(page: Any) -> None:
    page.evaluate("window.__sameDocument = true")


def assert_same_document(page: Any) -> None:
    """No full reload happened since mark_page (JavaScript updated the page in place)."""
    assert page.evaluate("window.__sameDocument === true")


def wait_for_sync_window(shop: Any) -> None:
    time.sleep(shop.app.config["CART_SYNC_SECONDS"] + 0.5)


def test_guest_cart_survives_closing_the_browser(shop, new_context, screenshot):
    context = new_context()
    page = context.new_page()
    page.goto(shop("/"))
    expect(badge(page)).to_have_text("0")
    mark_page(page)
    add_from_catalogue(page, "enamel-mug", 1)
    add_from_catalogue(page, "notebook", 2)
    assert_same_document(page)
    expect(page.locator(".flash-success")).to_contain_text("Dotted notebook")
    # Over the stock: the JSON route refuses (422) and the page says why, by name.
    page.goto(shop("/products/wool-socks"))
    mark_page(page)
    page.get_by_label("Quantity").fill("3")
    page.get_by_role("button", name="Add to cart").click()
    expect(badge(page)).to_have_text("5")
    page.get_by_label("Quantity").fill("1")
    page.get_by_role("button", name="Add to cart").click()
    expect(page.locator(".flash-error")).to_have_text(
        "Only 3 of Wool socks in stock (3 already in the cart)"
    )
    expect(badge(page)).to_have_text("5")
    assert_same_document(page)
    cookies = {cookie["name"]: cookie for cookie in context.cookies()}
    assert "guest_cart_id" in cookies
    assert cookies["guest_cart_id"]["httpOnly"]
    state = context.storage_state()
    context.close()

    reopened = new_context(storage_state=state)
    page = reopened.new_page()
    page.goto(shop("/basket"))
    expect(badge(page)).to_have_text("5")
    assert cart_lines(page) == {"enamel-mug": 1, "notebook": 1, "wool-socks": 3}
    expect(page.locator("[data-cart-total]")).to_have_text("$66.70")
    screenshot(page)

    # 7 pairs typed where 3 exist: refused; the box shows the 3 the cart holds, and why.
    mark_page(page)
    socks = page.locator('tr[data-line="wool-socks"]')
    socks.locator('input[name="quantity"]').fill("7")
    socks.locator('input[name="quantity"]').press("Enter")
    message = socks.locator("[data-line-message]")
    expect(message).to_have_text("Only 3 of Wool socks in stock: your cart still has 3.")
    expect(socks.locator('input[name="quantity"]')).to_have_value("3")
    expect(socks.locator('input[name="quantity"]')).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".flash-error")).to_have_text("Only 3 of Wool socks in stock")
    expect(page.locator("[data-cart-total]")).to_have_text("$66.70")
    screenshot(page, "refused")

    # Removing and emptying with JavaScript: the page is updated in place.
    page.locator('tr[data-line="notebook"]').get_by_role("button", name="Remove").click()
    expect(page.locator('tr[data-line="notebook"]')).to_have_count(0)
    expect(page.locator("[data-cart-total]")).to_have_text("$52.70")
    expect(badge(page)).to_have_text("4")
    page.get_by_role("button", name="Empty cart").click()
    expect(page.locator("[data-cart-empty]")).to_be_visible()
    expect(badge(page)).to_have_text("0")
    assert_same_document(page)


def test_login_merges_guest_cart_with_customer_cart(shop, new_context, screenshot):
    # Alice's cart from another device: 1 enamel mug and 1 notebook.
    phone = new_context().new_page()
    log_in(phone, shop)
    phone.goto(shop("/"))
    add_from_catalogue(phone, "enamel-mug", 1)
    add_from_catalogue(phone, "notebook", 2)

    # On the laptop, as a guest: 1 notebook and 2 green teas.
    laptop = new_context().new_page()
    laptop.goto(shop("/"))
    add_from_catalogue(laptop, "notebook", 1)
    add_from_catalogue(laptop, "green-tea", 2)
    add_from_catalogue(laptop, "green-tea", 3)

    log_in(laptop, shop, then="/basket")
    # The documented rule (CART_MERGE_STRATEGY "sum"): quantities of a shared product add.
    expect(laptop.locator(".flash-success").first).to_contain_text(
        "3 items from your guest cart were added"
    )
    expect(badge(laptop)).to_have_text("5")
    assert cart_lines(laptop) == {"enamel-mug": 1, "notebook": 2, "green-tea": 2}
    expect(laptop.locator("[data-cart-quantity]")).to_have_text("5")
    screenshot(laptop)


def test_second_device_sees_the_same_cart(shop, new_context, screenshot):
    laptop = new_context().new_page()
    log_in(laptop, shop)
    laptop.goto(shop("/"))
    add_from_catalogue(laptop, "coffee-beans", 1)
    add_from_catalogue(laptop, "pour-over", 2)

    phone = new_context().new_page()
    log_in(phone, shop)
    phone.goto(shop("/basket"))
    assert cart_lines(phone) == {"coffee-beans": 1, "pour-over": 1}

    # A change on the laptop reaches the phone once its sync window has passed.
    laptop.goto(shop("/products/desk-lamp"))
    laptop.get_by_label("Quantity").fill("2")
    laptop.get_by_role("button", name="Add to cart").click()
    expect(badge(laptop)).to_have_text("4")
    wait_for_sync_window(shop)
    phone.goto(shop("/basket"))
    assert cart_lines(phone) == {"coffee-beans": 1, "pour-over": 1, "desk-lamp": 2}
    expect(badge(phone)).to_have_text("4")

    # And the other way round, changing a quantity in place on the phone's cart page.
    mark_page(phone)
    phone.locator('tr[data-line="coffee-beans"] input[name="quantity"]').fill("3")
    phone.locator('tr[data-line="coffee-beans"] input[name="quantity"]').dispatch_event("change")
    expect(badge(phone)).to_have_text("6")
    assert_same_document(phone)
    wait_for_sync_window(shop)
    laptop.goto(shop("/basket"))
    assert cart_lines(laptop)["coffee-beans"] == 3
    screenshot(phone)


def test_checkout_empties_the_cart_on_both_devices(shop, new_context, screenshot):
    laptop = new_context().new_page()
    log_in(laptop, shop)
    laptop.goto(shop("/"))
    add_from_catalogue(laptop, "jigsaw", 1)
    add_from_catalogue(laptop, "plant-pot", 2)
    add_from_catalogue(laptop, "plant-pot", 3)

    phone = new_context().new_page()
    log_in(phone, shop)
    phone.goto(shop("/basket"))
    assert cart_lines(phone) == {"jigsaw": 1, "plant-pot": 2}

    laptop.goto(shop("/basket"))
    laptop.get_by_role("link", name="Check out").click()
    expect(laptop.get_by_role("heading", name="Check out")).to_be_visible()
    laptop.get_by_role("button", name="Place order").click()
    expect(laptop.get_by_role("heading", name="Order #")).to_be_visible()
    expect(laptop.locator(".flash-success")).to_contain_text("Thank you")
    expect(laptop.locator('[data-order-line="jigsaw"]')).to_contain_text("1000-piece jigsaw")
    expect(laptop.locator('[data-order-line="plant-pot"] td').nth(2)).to_have_text("2")
    expect(laptop.locator("tfoot .total")).to_have_text("$44.39")
    expect(badge(laptop)).to_have_text("0")
    screenshot(laptop, "order")
    laptop.goto(shop("/basket"))
    expect(laptop.locator("[data-cart-empty]")).to_be_visible()

    wait_for_sync_window(shop)
    phone.goto(shop("/basket"))
    expect(badge(phone)).to_have_text("0")
    expect(phone.locator("[data-cart-empty]")).to_be_visible()
    assert cart_lines(phone) == {}
    screenshot(phone)


def test_cart_works_without_javascript(shop, new_context, screenshot):
    page = new_context(java_script_enabled=False).new_page()
    page.goto(shop("/"))
    page.locator('li[data-product="tote-bag"]').get_by_role("button", name="Add to cart").click()
    expect(page.locator(".flash-success")).to_contain_text("Added 1 \u00d7 Canvas tote bag")
    expect(badge(page)).to_have_text("1")
    page.goto(shop("/products/wool-socks"))
    page.get_by_label("Quantity").fill("2")
    page.get_by_role("button", name="Add to cart").click()
    expect(badge(page)).to_have_text("3")
    # The stock limit: 3 pairs of socks exist, 2 are in the cart already.
    page.get_by_label("Quantity").fill("2")
    page.get_by_role("button", name="Add to cart").click()
    expect(page.locator(".flash-error")).to_contain_text("Only 3 of Wool socks in stock")
    expect(badge(page)).to_have_text("3")

    page.goto(shop("/basket"))
    assert cart_lines(page) == {"tote-bag": 1, "wool-socks": 2}
    # 7 pairs where 3 exist: the page comes back with the 2 the cart holds, and why.
    socks = page.locator('tr[data-line="wool-socks"]')
    socks.locator('input[name="quantity"]').fill("7")
    socks.get_by_role("button", name="Update").click()
    expect(socks.locator("[data-line-message]")).to_have_text(
        "Only 3 of Wool socks in stock: your cart still has 2."
    )
    assert cart_lines(page) == {"tote-bag": 1, "wool-socks": 2}
    screenshot(page, "refused")
    page.locator('tr[data-line="tote-bag"] input[name="quantity"]').fill("2")
    page.locator('tr[data-line="tote-bag"]').get_by_role("button", name="Update").click()
    expect(badge(page)).to_have_text("4")
    page.locator('tr[data-line="wool-socks"]').get_by_role("button", name="Remove").click()
    expect(page.locator(".flash-info")).to_contain_text("Removed")
    assert cart_lines(page) == {"tote-bag": 2}
    expect(page.locator("[data-cart-total]")).to_have_text("$36.00")
    screenshot(page)
    page.get_by_role("button", name="Empty cart").click()
    expect(page.locator("[data-cart-empty]")).to_be_visible()
    expect(badge(page)).to_have_text("0")
