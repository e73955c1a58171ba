"""The demo shop served by a real server on 127.0.0.1, driven by headless Chromium.

Chromium comes from Debian (`/usr/bin/chromium`); Playwright never downloads a browser.
Where it is missing the browser tests skip locally and fail under CI=true.
Each test gets its own shop: a fresh SQLite database, and with Redis its own key prefix,
whose keys are deleted (SCAN) afterwards. Screenshots go to tests/artifacts/, or to the
folder CART_TEST_ARTIFACTS names.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from tests.conftest import delete_prefix

CHROMIUM = os.environ.get("CART_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REDIS_URL = os.environ.get("CART_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() == "true"
ARTIFACTS = Path(
    os.environ.get("CART_TEST_ARTIFACTS") or Path(__file__).resolve().parent.parent / "artifacts"
)
SYNC_SECONDS = 1
RUN_ID = uuid.uuid4().hex[:8]
_counter = itertools.count()

SHOP_STORES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
]
# Every scenario runs on a laptop's window and on a phone's (390 px wide, as an iPhone 12-15).
WIDTHS = {"desktop": {"width": 1200, "height": 800}, "phone": {"width": 390, "height": 844}}


def _missing_browser(message: str) -> None:
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        _missing_browser(
            f"Chromium is missing at {CHROMIUM}: install it with `apt-get install chromium` "
            "(or run `bash scripts/ensure_services.sh --chromium`)"
        )
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing_browser("Playwright for Python is missing: pip install -e '.[test]'")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class QuietHandler(WSGIRequestHandler):
    """No access log on stderr: the tests' output stays readable."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


@dataclass
class Shop:
    """A running demo shop."""

    url: str
    store: str
    app: Any

    def __call__(self, path: str = "/") -> str:
        return self.url + path


@pytest.fixture(params=SHOP_STORES)
def shop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Shop]:
    from demo_app import create_app

    kind = request.param
    config: dict[str, Any] = {
        "SECRET_KEY": secrets.token_hex(16),
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'shop.sqlite3'}",
        "CART_SYNC_SECONDS": SYNC_SECONDS,
        "CART_STORE": "sqlalchemy",
    }
    prefix = f"fc_e2e_{RUN_ID}_{next(_counter)}:"
    client = None
    if kind == "redis":
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_timeout=5, socket_connect_timeout=2)
        try:
            client.ping()
        except redis.exceptions.ConnectionError:
            pytest.fail(
                f"Redis at {REDIS_URL} does not answer. Start it with: "
                "bash scripts/ensure_services.sh",
                pytrace=False,
            )
        config.update(CART_STORE="redis", CART_REDIS_URL=REDIS_URL, CART_KEY_PREFIX=prefix)
    app = create_app(config)
    try:
        with serve(app) as url:
            yield Shop(url, kind, app)
    finally:
        if client is not None:
            delete_prefix(client, prefix)
            client.close()


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve `app` on a free port of 127.0.0.1 while the block runs; its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="demo-shop", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture(params=list(WIDTHS))
def width(request: pytest.FixtureRequest) -> str:
    """The screen the scenario runs on: "desktop" or "phone"."""
    return str(request.param)


@pytest.fixture
def new_context(browser: Any, width: str) -> Iterator[Any]:
    """Factory of browser contexts (one per device); all closed after the test."""
    contexts: list[Any] = []

    def make(**options: Any) -> Any:
        if width == "phone":
            # A phone: the page's <meta name="viewport"> applies, scrollbars take no room.
            options = {"is_mobile": True, "has_touch": True, **options}
        context = browser.new_context(viewport=WIDTHS[width], **options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


def assert_fits(page: Any) -> None:
    """Nothing on the page is wider than the window: no sideways scrolling."""
    sizes = page.evaluate(
        "({scroll: document.documentElement.scrollWidth, inner: window.innerWidth,"
        " client: document.documentElement.clientWidth})"
    )
    assert sizes["scroll"] <= sizes["inner"], f"{page.url} scrolls sideways: {sizes}"
    assert sizes["scroll"] <= sizes["client"], f"{page.url} scrolls sideways: {sizes}"


@pytest.fixture
def screenshot(request: pytest.FixtureRequest, shop: Shop, width: str) -> Any:
    """screenshot(page, name): checks the page fits its window, then saves a full-page PNG in
    tests/artifacts/, named per scenario, store and width."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str = "cart", full_page: bool = True) -> Path:
        """`full_page` False: only what the window shows (where the shopper is looking)."""
        assert_fits(page)
        path = ARTIFACTS / f"e2e-{request.node.originalname}-{shop.store}-{width}-{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return take
