"""End-to-end: a cart link in real Chromium. Another origin (the same host, another port)
embeds the demo shop's add link as an image, a script and an iframe, and fetches it: the
browser sends the shop's cookies with each, yet the cart does not change. A click on the
same URL as a link, a top-level navigation, adds."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import request, request_finished
from markupsafe import escape
from playwright.sync_api import expect
from werkzeug.serving import make_server

from tests.e2e.conftest import QuietHandler

pytestmark = pytest.mark.e2e

ATTACK = """<!doctype html><html><head><meta charset="utf-8"><title>Elsewhere</title></head>
<body><h1>Another site</h1>
<img src="{url}" alt="">
<script src="{url}"></script>
<iframe src="{url}" title="embedded"></iframe>
<script>
  fetch("{url}", {{mode: "no-cors", credentials: "include"}}).catch(() => null);
  fetch("{url}", {{credentials: "include"}}).catch(() => null);
</script>
<p><a id="go" href="{url}">Add it to your cart</a></p>
</body></html>
"""


@pytest.fixture
def elsewhere() -> Iterator[Any]:
    """A second loopback origin (another port) serving the page set as `.html`."""

    class Site:
        html = ""
        url = ""

    site = Site()

    def app(environ: Any, start_response: Any) -> list[bytes]:
        body = site.html.encode()
        start_response(
            "200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(body)))]
        )
        return [body]

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    site.url = f"http://127.0.0.1:{server.server_port}/"
    thread = threading.Thread(target=server.serve_forever, name="elsewhere", daemon=True)
    thread.start()
    yield site
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


def cart_of(context: Any, shop: Any) -> dict[str, int]:
    """The browser's cart as GET /cart answers it (with the context's cookies)."""
    body = context.request.get(shop("/cart")).json()
    return {item["product_id"]: item["quantity"] for item in body["items"]}


def test_only_a_click_follows_a_cart_link(shop, browser, elsewhere):
    seen: list[tuple[str, int, str]] = []
    cookies: list[bool] = []

    def record(sender: Any, response: Any, **extra: Any) -> None:
        if request.path.startswith("/cart/add/notebook"):
            dest = request.headers.get("Sec-Fetch-Dest", "-")
            seen.append((request.method, response.status_code, dest))
            cookies.append("guest_cart_id" in request.cookies)

    request_finished.connect(record, shop.app)
    context = browser.new_context()
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        page.goto(shop("/cart/add/enamel-mug"))  # a typed URL: a navigation, it adds
        expect(page.locator("[data-cart-badge]")).to_have_text("1")
        assert cart_of(context, shop) == {"enamel-mug": 1}

        url = shop("/cart/add/notebook?qty=3")
        elsewhere.html = ATTACK.format(url=escape(url))
        page.goto(elsewhere.url)
        deadline = time.monotonic() + 10
        while len(seen) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sorted(dest for _, _, dest in seen) == [
            "empty",
            "empty",
            "iframe",
            "image",
            "script",
        ]
        assert {status for _, status, _ in seen} == {403}
        assert all(cookies)  # the browser sent the cart's cookie with each (same site)
        assert cart_of(context, shop) == {"enamel-mug": 1}

        seen.clear()
        page.locator("#go").click()
        page.wait_for_url(shop("/"))
        expect(page.locator("[data-cart-badge]")).to_have_text("4")
        assert seen == [("GET", 303, "document")]
        assert cart_of(context, shop) == {"enamel-mug": 1, "notebook": 3}
    finally:
        request_finished.disconnect(record, shop.app)
        context.close()


def test_the_product_page_shares_its_add_link(shop, browser):
    context = browser.new_context()
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        page.goto(shop("/products/notebook"))
        link = page.locator("[data-add-link]")
        expect(link).to_have_text(shop("/cart/add/notebook"))
        link.click()
        page.wait_for_url(shop("/products/notebook"))
        expect(page.locator("[data-cart-badge]")).to_have_text("1")
    finally:
        context.close()
