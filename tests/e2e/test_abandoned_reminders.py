"""End-to-end: QA walks an abandoned cart from the guest's "save my cart" box to the reminder
e-mail in the demo's outbox, recovers it from the mail's link on another device, and checks
out. In real headless Chromium, on SQLite and Redis, at 1200 px and 390 px.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import delete_prefix
from tests.e2e.conftest import REDIS_URL, RUN_ID, SHOP_STORES, Shop, _counter, serve
from tests.e2e.test_storefront import add_from_catalogue, badge, cart_lines

pytestmark = pytest.mark.e2e

STAGE_SECONDS = 1


@pytest.fixture(params=SHOP_STORES)
def shop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Shop]:
    """The demo shop as QA runs it: DEMO_QA on, one stage of 1 s, the outbox in tmp_path,
    and SERVER_NAME naming the address it serves on (the reminders' links)."""
    from demo_app import create_app

    kind = request.param
    config: dict[str, Any] = {
        "SECRET_KEY": secrets.token_hex(16),
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'shop.sqlite3'}",
        "CART_STORE": "sqlalchemy",
        "CART_SYNC_SECONDS": 1,
        "CART_STORE_TIMEOUT": 30,
        "CART_ABANDONED_STAGES": [f"{STAGE_SECONDS}s"],
        "DEMO_QA": True,
        "DEMO_OUTBOX": str(tmp_path / "outbox"),
    }
    prefix = f"fc_e2e_{RUN_ID}_{next(_counter)}:"
    client = None
    if kind == "redis":
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_timeout=5, socket_connect_timeout=2)
        config.update(CART_STORE="redis", CART_REDIS_URL=REDIS_URL, CART_KEY_PREFIX=prefix)
    app = create_app(config)
    try:
        with serve(app) as url:
            app.config["SERVER_NAME"] = url.removeprefix("http://")
            yield Shop(url, kind, app)
    finally:
        if client is not None:
            delete_prefix(client, prefix)
            client.close()


def test_qa_walks_abandon_reminder_recovery_and_checkout(shop, new_context, screenshot):
    """A guest adds two things and saves their address; a second later QA sends the
    reminders; the outbox shows the e-mail (List-Unsubscribe, the links); its recovery link,
    opened on another device, lists the lines and recovers them on "Recover my cart"; that
    device checks out."""
    guest = new_context().new_page()
    guest.goto(shop("/"))
    add_from_catalogue(guest, "enamel-mug", 1)
    add_from_catalogue(guest, "notebook", 2)
    guest.goto(shop("/basket"))
    box = guest.locator("[data-save-cart]")
    box.get_by_label("Save my cart").fill("ann@example.com")
    box.get_by_role("button", name="Save my cart").click()
    expect(guest.locator(".flash")).to_contain_text("we will send a link to ann@example.com")
    screenshot(guest, "saved")

    time.sleep(STAGE_SECONDS + 0.5)  # the cart is now abandoned for the 1 s stage

    qa = new_context().new_page()
    qa.goto(shop("/status/abandoned"))
    row = qa.locator("table.abandoned tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator('[data-field="email"]')).to_have_text("ann@example.com")
    expect(qa.locator("[data-outbox-empty]")).to_be_visible()
    qa.get_by_role("button", name="Send reminders now").click()
    expect(qa.locator(".flash")).to_contain_text("sent 1 reminder")
    mail = qa.locator("article.mail")
    expect(mail).to_have_count(1)
    expect(mail.locator("h3")).to_have_text("You left something in your cart at Never-Lost Goods")
    headers = mail.locator(".mail-headers").inner_text()
    assert "ann@example.com" in headers
    assert re.search(r"List-Unsubscribe\s+<http://127\.0\.0\.1:\d+/cart/unsubscribe/", headers)
    assert re.search(r"List-Unsubscribe-Post\s+List-Unsubscribe=One-Click", headers)
    text = mail.locator(".mail-text").inner_text()
    assert "Enamel mug" in text and "Dotted notebook" in text
    links = mail.locator("[data-mail-link]")
    recovery = next(
        href
        for href in (links.nth(i).get_attribute("href") for i in range(links.count()))
        if href and "/cart/recover/" in href
    )
    assert recovery.startswith(shop.url + "/cart/recover/")
    screenshot(qa, "outbox")

    # The same run again: nothing more to send (one e-mail per stage).
    qa.get_by_role("button", name="Send reminders now").click()
    expect(qa.locator(".flash")).to_contain_text("sent 0 reminders")
    expect(qa.locator("article.mail")).to_have_count(1)

    phone = new_context().new_page()
    phone.goto(recovery)
    expect(phone.get_by_role("heading", name="Recover your cart?")).to_be_visible()
    expect(phone.locator("main")).to_contain_text("Enamel mug")
    expect(phone.locator("main")).to_contain_text("Dotted notebook")
    screenshot(phone, "confirm")
    phone.get_by_role("button", name="Recover my cart").click()
    expect(badge(phone)).to_have_text("2")
    phone.goto(shop("/basket"))
    assert cart_lines(phone) == {"enamel-mug": 1, "notebook": 1}
    screenshot(phone, "recovered")
    phone.get_by_role("link", name="Check out").click()
    phone.get_by_label("E-mail for the order confirmation").fill("ann@example.com")
    phone.get_by_role("button", name="Place order").click()
    expect(phone.get_by_role("heading", name="Order #")).to_be_visible()
    expect(phone.locator("tfoot .total")).to_have_text("$26.50")
    expect(badge(phone)).to_have_text("0")
    screenshot(phone, "order")

    # The guest's own browser holds no cart any more: it went to the other device.
    guest.goto(shop("/basket"))
    expect(guest.locator("[data-cart-empty]")).to_be_visible()
