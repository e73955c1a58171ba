"""End-to-end in real Chromium: a script on another site that navigates to a cart link gets
the confirmation page (nothing added until a click), and a recovery link opened by a
cookie-less browser (a mail scanner) takes nothing until a person presses its button."""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.test_cart_links import cart_of, elsewhere  # noqa: F401 - a fixture
from tests.flask.confirming import CLICKED
from tests.flask.shop import guest_id_of

pytestmark = pytest.mark.e2e

SCRIPT_NAVIGATION = """<!doctype html><html><head><meta charset="utf-8"><title>Elsewhere</title>
</head><body><script>location = {url};</script></body></html>
"""


def test_a_script_navigating_from_another_site_gets_the_confirmation_page(
    shop: Any,
    browser: Any,
    elsewhere: Any,  # noqa: F811
) -> None:
    context = browser.new_context()
    context.set_default_timeout(10_000)
    try:
        url = shop("/cart/add/notebook?qty=3")
        elsewhere.html = SCRIPT_NAVIGATION.format(url=json.dumps(url))
        page = context.new_page()
        page.goto(elsewhere.url)
        page.wait_for_url(url)
        button = page.get_by_role("button", name="Add to cart")
        expect(button).to_be_visible()
        assert cart_of(context, shop) == {}
        button.click()
        page.wait_for_url(shop("/"))
        assert cart_of(context, shop) == {"notebook": 3}
    finally:
        context.close()


def test_a_recovery_link_takes_nothing_until_a_person_confirms(shop: Any, browser: Any) -> None:
    owner = shop.app.test_client()
    response = owner.get("/cart/add/notebook?qty=2", headers=CLICKED)  # a click on a link
    assert response.status_code == 303, response.data
    guest = guest_id_of(owner)
    assert guest is not None
    with shop.app.test_request_context("/", base_url=shop.url):
        url = shop.app.extensions["cart"].recovery_url(guest)
    scanner = browser.new_context()
    person = browser.new_context()
    try:
        for context in (scanner, person):
            context.set_default_timeout(10_000)
        scan = scanner.new_page()
        scan.goto(url)  # a scanner's cookie-less browser opens the link
        expect(scan.get_by_role("button", name="Recover my cart")).to_be_visible()
        assert cart_of(scanner, shop) == {}
        page = person.new_page()
        page.goto(url)
        expect(page.locator("main li")).to_contain_text("2 \N{MULTIPLICATION SIGN} ")
        page.get_by_role("button", name="Recover my cart").click()
        page.wait_for_url(shop("/"))
        assert cart_of(person, shop) == {"notebook": 2}
        assert cart_of(scanner, shop) == {}
    finally:
        scanner.close()
        person.close()
