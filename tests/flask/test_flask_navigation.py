"""Which request may follow a cart link (flask_cart.navigation): the browser's Sec-Fetch-*
headers decide; without them the link answers a page with a POST button."""

from __future__ import annotations

import time
from typing import Any
from unittest import mock

import pytest
from flask import Flask
from flask_wtf.csrf import CSRFProtect

from flask_cart import NotANavigation
from flask_cart.navigation import Follow, follow_or_confirm
from tests.flask.confirming import confirmation_form, press_button

NAVIGATE = {
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-Site": "none",
    "Sec-Fetch-User": "?1",
}


def link_app(csrf: bool = False) -> tuple[Flask, list[str]]:
    app = Flask(__name__)
    app.secret_key = "test"
    followed: list[str] = []

    @app.route("/go/<name>", methods=["GET", "POST"])
    def go(name: str) -> Any:
        try:
            follow = follow_or_confirm(f"Add {name}?", "Add to cart")
        except NotANavigation as exc:
            return {"error": exc.code}, exc.status
        if not isinstance(follow, Follow):
            return follow
        followed.append(name)
        return "followed"

    if csrf:
        CSRFProtect(app)
    return app, followed


def test_a_top_level_navigation_follows_the_link() -> None:
    app, followed = link_app()
    response = app.test_client().get("/go/mug", headers=NAVIGATE)
    assert response.status_code == 200 and followed == ["mug"]


def test_a_cross_site_click_follows_the_link() -> None:
    app, followed = link_app()
    headers = dict(NAVIGATE, **{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-User": "?1"})
    assert app.test_client().get("/go/mug", headers=headers).status_code == 200
    assert followed == ["mug"]


@pytest.mark.parametrize(
    ("mode", "dest"),
    [
        ("no-cors", "image"),
        ("no-cors", "script"),
        ("navigate", "iframe"),
        ("navigate", "frame"),
        ("cors", "empty"),
        ("same-origin", "empty"),
        ("navigate", None),
        (None, "document"),
        ("websocket", "websocket"),
    ],
)
def test_anything_but_a_top_level_navigation_changes_nothing(
    mode: str | None, dest: str | None
) -> None:
    app, followed = link_app()
    headers = {"Sec-Fetch-Site": "cross-site"}
    if mode is not None:
        headers["Sec-Fetch-Mode"] = mode
    if dest is not None:
        headers["Sec-Fetch-Dest"] = dest
    response = app.test_client().get("/go/mug", headers=headers)
    assert response.status_code == 403
    assert response.get_json() == {"error": "navigation_required"}
    assert followed == []


def test_a_head_request_never_follows() -> None:
    app, followed = link_app()
    assert app.test_client().head("/go/mug", headers=NAVIGATE).status_code == 403
    assert followed == []


def test_without_sec_fetch_headers_a_page_asks_for_a_click() -> None:
    app, followed = link_app()
    client = app.test_client()
    page = client.get("/go/<mug>?qty=2&next=/x")
    assert page.status_code == 200 and followed == []
    html = page.get_data(as_text=True)
    assert '<form method="post" action="/go/%3Cmug%3E?qty=2&amp;next=/x">' in html
    assert "Add &lt;mug&gt;?" in html and "<mug>" not in html
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert client.post("/go/mug?qty=2").status_code == 403  # without the page's token
    assert followed == []
    assert press_button(client, page).status_code == 200
    assert followed == ["<mug>"]


def test_the_page_carries_the_csrf_token_when_csrfprotect_is_on() -> None:
    app, followed = link_app(csrf=True)
    client = app.test_client()
    page = client.get("/go/mug")
    assert 'name="csrf_token"' in page.get_data(as_text=True)
    form = confirmation_form(page)
    assert form is not None
    fields = form[1]
    assert "csrf_token" in fields and "cart_confirm" in fields
    without_csrf = {"cart_confirm": fields["cart_confirm"]}
    assert client.post("/go/mug", data=without_csrf).status_code == 400  # Flask-WTF refuses
    without_ours = {"csrf_token": fields["csrf_token"]}
    assert client.post("/go/mug", data=without_ours).status_code == 403
    assert followed == []
    assert client.post("/go/mug", data=fields).status_code == 200
    assert followed == ["mug"]


# -- navigations no person started, and posts without the page's token ---------------------

NO_CLICK = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}


@pytest.mark.parametrize("site", ["cross-site", "same-site", "none"])
def test_a_navigation_without_a_click_gets_the_confirmation_page(site: str) -> None:
    """A script's ``location = ...``, a meta refresh or an auto-submitted GET form from
    another site arrives as navigate/document without ``Sec-Fetch-User: ?1``."""
    app, followed = link_app()
    client = app.test_client()
    page = client.get("/go/mug", headers=dict(NO_CLICK, **{"Sec-Fetch-Site": site}))
    assert page.status_code == 200 and confirmation_form(page) is not None
    assert followed == []


def test_a_navigation_from_the_shops_own_pages_follows_without_a_click() -> None:
    app, followed = link_app()
    headers = dict(NO_CLICK, **{"Sec-Fetch-Site": "same-origin"})
    assert app.test_client().get("/go/mug", headers=headers).get_data() == b"followed"
    assert followed == ["mug"]


def test_a_post_without_the_pages_token_changes_nothing() -> None:
    """A form another site submits, or an old browser's post with neither Origin nor
    Sec-Fetch-*: nothing but the confirmation page's own button is followed."""
    app, followed = link_app()
    client = app.test_client()
    page = client.get("/go/mug")
    other = client.get("/go/spoon")
    _, fields = confirmation_form(other) or ("", {})
    for data in ({"next": "/"}, {"cart_confirm": ""}, {"cart_confirm": "x.y"}, fields):
        response = client.post("/go/mug", data=data)  # a form: the page again, to confirm
        assert response.status_code == 403, data
        assert confirmation_form(response) is not None
    script = client.post("/go/mug", headers={"Accept": "application/json"})
    assert script.status_code == 403
    assert script.get_json() == {"error": "confirmation_required"}
    assert followed == []
    assert press_button(client, page).status_code == 200
    assert followed == ["mug"]


def test_a_confirmation_token_expires_after_ten_minutes() -> None:
    app, followed = link_app()
    client = app.test_client()
    made = time.time() - 601
    with mock.patch("flask_cart.tokens.time.time", return_value=made):
        page = client.get("/go/mug")
    assert press_button(client, page).status_code == 403
    assert followed == []
