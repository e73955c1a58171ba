"""End-to-end: checkout charges what the customer reviewed, a guest checks out, and every
page fits a phone. In real headless Chromium, on SQLite and Redis, at 1200 px and 390 px.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import assert_fits
from tests.e2e.test_storefront import add_from_catalogue, badge, cart_lines, log_in

pytestmark = pytest.mark.e2e

BRAND_GREEN = "rgb(47, 93, 80)"  # --brand: the fill of the main buttons


def test_a_change_after_the_review_is_shown_not_charged(shop, new_context, screenshot):
    """Alice reviews one plant pot on her laptop; on her phone she makes it two; the laptop's
    "Place order" says the cart changed and shows it; the order placed is what she confirmed."""
    laptop = new_context().new_page()
    log_in(laptop, shop)
    laptop.goto(shop("/"))
    add_from_catalogue(laptop, "plant-pot", 1)
    add_from_catalogue(laptop, "notebook", 2)
    laptop.goto(shop("/basket"))
    laptop.get_by_role("link", name="Check out").click()
    expect(laptop.get_by_role("heading", name="Check out")).to_be_visible()
    expect(laptop.get_by_role("button", name="Place order")).to_have_text("Place order ($25.20)")
    screenshot(laptop, "review")

    phone = new_context().new_page()
    log_in(phone, shop)
    phone.goto(shop("/basket"))
    pots = phone.locator('tr[data-line="plant-pot"] input[name="quantity"]')
    pots.fill("2")
    pots.dispatch_event("change")
    expect(badge(phone)).to_have_text("3")

    laptop.get_by_role("button", name="Place order").click()
    notice = laptop.locator("[data-cart-changed]")
    expect(notice).to_contain_text("Your cart changed since you reviewed it")
    expect(notice).to_contain_text("Nothing was ordered and nothing was charged")
    line = laptop.locator('[data-review-line="plant-pot"]')
    expect(line.locator('[data-field="quantity"]')).to_have_text("2")
    expect(line).to_contain_text("was 1")
    expect(laptop.locator("[data-review-total]")).to_have_text("$36.40")
    expect(laptop.get_by_role("button", name="Place order")).to_have_text("Place order ($36.40)")
    screenshot(laptop, "changed")

    laptop.get_by_role("button", name="Place order").click()
    expect(laptop.get_by_role("heading", name="Order #")).to_be_visible()
    expect(laptop.locator('[data-order-line="plant-pot"] td').nth(2)).to_have_text("2")
    expect(laptop.locator('[data-order-line="notebook"] td').nth(2)).to_have_text("1")
    expect(laptop.locator("tfoot .total")).to_have_text("$36.40")
    expect(badge(laptop)).to_have_text("0")
    screenshot(laptop, "order")


def test_a_guest_checks_out_with_an_email_address(shop, new_context, screenshot):
    context = new_context()
    page = context.new_page()
    page.goto(shop("/products/green-tea"))
    page.get_by_label("Quantity").fill("2")
    page.get_by_role("button", name="Add to cart").click()
    expect(badge(page)).to_have_text("2")
    assert "guest_cart_id" in {cookie["name"] for cookie in context.cookies()}
    page.goto(shop("/basket"))
    page.get_by_role("link", name="Check out").click()
    place = page.get_by_role("button", name="Place order")
    expect(place).to_have_text("Place order ($19.50)")
    expect(place).to_have_css("background-color", BRAND_GREEN)
    place.click()
    expect(page.locator(".field-error")).to_contain_text("Enter an e-mail address")
    screenshot(page, "review")
    page.get_by_label("E-mail for the order confirmation").fill("guest@example.com")
    page.get_by_role("button", name="Place order").click()

    expect(page.get_by_role("heading", name="Order #")).to_be_visible()
    expect(page.locator(".flash-success")).to_contain_text(
        "The confirmation goes to guest@example.com"
    )
    expect(page.locator(".lead")).to_contain_text("guest@example.com (guest)")
    expect(page.locator("tfoot .total")).to_have_text("$19.50")
    expect(badge(page)).to_have_text("0")
    # flask-cart cleared the guest cookie with the cart.
    assert "guest_cart_id" not in {cookie["name"] for cookie in context.cookies()}
    screenshot(page, "order")
    order_url = page.url
    page.goto(shop("/basket"))
    expect(page.locator("[data-cart-empty]")).to_be_visible()
    # The order is this browser's: another one does not see it.
    stranger = new_context().new_page()
    assert stranger.goto(order_url).status == 404


def test_every_page_fits_the_window(shop, new_context, screenshot, width):
    page = new_context().new_page()
    for path, name in [
        ("/", "catalogue"),
        ("/products/wool-socks", "product"),
        ("/register", "register"),
        ("/nope", "not-found"),
        ("/logout", "method-not-allowed"),
    ]:
        page.goto(shop(path))
        expect(page.locator(".site-header")).to_be_visible()  # the shop's layout
        screenshot(page, name)
    # flask-cart's own pages (a cart link) wear the shop's layout too.
    linked = new_context().new_page()
    for path, name in [
        ("/cart/add/notebook?qty=abc", "link-refused"),
        ("/cart/add/notebook?qty=2", "link-followed"),
    ]:
        linked.goto(shop(path))
        expect(linked.locator(".site-header")).to_be_visible()
        screenshot(linked, name)
    page.goto(shop("/login"))
    expect(page.get_by_role("button", name="Log in")).to_have_css("background-color", BRAND_GREEN)
    screenshot(page, "login")
    page.goto(shop("/"))
    add_from_catalogue(page, "fountain-pen", 1)
    add_from_catalogue(page, "jigsaw", 2)
    log_in(page, shop, then="/basket")
    assert cart_lines(page) == {"fountain-pen": 1, "jigsaw": 1}
    header = page.locator(".site-header").bounding_box()
    if width == "phone":  # the header in two rows, not three
        assert header["height"] < 110, header
    page.goto(shop("/checkout"))
    screenshot(page, "checkout")
    page.goto(shop("/status"))
    screenshot(page, "status")
    page.goto(shop("/checkout"))
    page.get_by_role("button", name="Place order").click()
    expect(page.get_by_role("heading", name="Order #")).to_be_visible()
    page.goto(shop("/orders"))
    screenshot(page, "orders")
    # A form whose CSRF token went stale: the friendly 403 page, nothing changed.
    page.goto(shop("/products/notebook"))
    page.evaluate("document.querySelector('form.add-form input[name=csrf_token]').value = 'stale'")
    page.evaluate("document.querySelector('form.add-form').submit()")
    expect(page.get_by_role("heading", name="This page has expired")).to_be_visible()
    assert_fits(page)
    screenshot(page, "csrf")
    page.goto(shop("/basket"))
    expect(page.locator("[data-cart-empty]")).to_be_visible()
