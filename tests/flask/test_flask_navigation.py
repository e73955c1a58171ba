"""Which request may follow a cart link (flask_cart.navigation): the browser's Sec-Fetch-*
headers decide; without them the link answers a page with a POST button."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask_wtf.csrf import CSRFProtect

from flask_cart import NotANavigation
from flask_cart.navigation import follow_or_confirm

NAVIGATE = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Sec-Fetch-Site": "none"}


def link_app(csrf: bool = False) -> tuple[Flask, list[str]]:
    app = Flask(__name__)
    app.secret_key = "test"
    followed: list[str] = []

    @app.route("/go/<name>", methods=["GET", "POST"])
    def go(name: str) -> Any:
        try:
            page = follow_or_confirm(f"Add {name}?", "Add to cart")
        except NotANavigation as exc:
            return {"error": exc.code}, exc.status
        if page is not None:
            return page
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
    assert client.post("/go/mug?qty=2").status_code == 200
    assert followed == ["mug"]


def test_the_page_carries_the_csrf_token_when_csrfprotect_is_on() -> None:
    app, followed = link_app(csrf=True)
    client = app.test_client()
    html = client.get("/go/mug").get_data(as_text=True)
    assert 'name="csrf_token"' in html
    assert client.post("/go/mug").status_code == 400  # Flask-WTF refuses a POST without it
    token = html.split('name="csrf_token" value="')[1].split('"')[0]
    assert client.post("/go/mug", data={"csrf_token": token}).status_code == 200
    assert followed == ["mug"]
