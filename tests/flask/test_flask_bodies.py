"""Request bodies on a real HTTP server: chunked or not, JSON or form, capped at 16 KB."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import jsonify
from flask_wtf.csrf import CSRFProtect, generate_csrf
from werkzeug.serving import make_server

from flask_cart.stores.base import CartKey
from tests.flask.shop import add, build_app, guest_id_of, stored
from tests.helpers import raw_dump

BOUNDARY = "----flask-cart-test"


@contextmanager
def serve(app: Any) -> Iterator[tuple[str, int]]:
    """`app` on a real (werkzeug) HTTP server in a thread: (host, port)."""
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", httpd.server_port
    finally:
        httpd.shutdown()
        thread.join(5)


@pytest.fixture
def server(app: Any) -> Iterator[tuple[str, int]]:
    with serve(app) as address:
        yield address


def multipart(fields: dict[str, str]) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    return ("".join(parts) + f"--{BOUNDARY}--\r\n").encode()


BODIES = {
    "json": ("application/json", lambda f: json.dumps(f).encode()),
    "urlencoded": ("application/x-www-form-urlencoded", lambda f: urlencode(f).encode()),
    "multipart": (f"multipart/form-data; boundary={BOUNDARY}", multipart),
}


def send(
    address: tuple[str, int],
    path: str,
    body: bytes,
    content_type: str,
    cookie: str,
    *,
    chunked: bool,
) -> tuple[int, str, dict[str, Any] | None]:
    """POST `body` (in 4 KB chunks when `chunked`): status, Location, JSON body or None."""
    conn = http.client.HTTPConnection(*address, timeout=10)
    headers = {"Content-Type": content_type, "Cookie": cookie}
    try:
        if chunked:
            chunks = (body[i : i + 4096] for i in range(0, len(body), 4096))
            headers["Transfer-Encoding"] = "chunked"
            conn.request("POST", path, body=chunks, headers=headers, encode_chunked=True)
        else:
            conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        is_json = response.getheader("Content-Type", "").startswith("application/json")
        return (
            response.status,
            response.getheader("Location", ""),
            (json.loads(data) if is_json else None),
        )
    finally:
        conn.close()


@pytest.fixture
def guest(client, cart_store):
    add(client, "sku-1", 2)
    key = CartKey(guest_id_of(client))
    return key, f"guest_cart_id={client.get_cookie('guest_cart_id').value}"


@pytest.mark.parametrize("kind", BODIES)
@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "length"])
@pytest.mark.parametrize("size", [20 * 1024, 600 * 1024])
def test_a_body_over_16_kb_is_refused(server, cart_store, guest, kind, chunked, size):
    key, cookie = guest
    before = raw_dump(cart_store, key)
    content_type, encode = BODIES[kind]
    body = encode({"product_id": "sku-3", "quantity": "1", "note": "x" * size})
    status, location, answer = send(
        server, "/cart/items", body, content_type, cookie, chunked=chunked
    )
    if kind == "json":
        assert 400 <= status < 500 and answer is not None, (status, answer)
        assert answer["error"]["code"] == "malformed_body"
        assert "16384 bytes" in answer["error"]["message"]
    else:  # a form a browser posted: its error is flashed and redirected, never JSON
        assert (status, location, answer) == (303, "/", None)
    assert raw_dump(cart_store, key) == before


@pytest.mark.parametrize("kind", BODIES)
@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "length"])
def test_a_small_body_is_read_chunked_or_not(server, cart_store, guest, kind, chunked):
    key, cookie = guest
    content_type, encode = BODIES[kind]
    fields = {"product_id": "sku-3", "quantity": "3" if kind != "json" else 3, "next": "/done"}
    body = encode({**fields, "note": "x" * 12000})
    status, location, answer = send(
        server, "/cart/items", body, content_type, cookie, chunked=chunked
    )
    if kind == "json":
        assert status == 200 and answer is not None and answer["quantity"] == 5
    else:
        assert (status, location.rsplit("/", 1)[-1]) == (303, "done")
    assert stored(cart_store, key.identifier) == {"sku-1": 2, "sku-3": 3}


@pytest.mark.parametrize("kind", ["urlencoded", "multipart"])
def test_a_bad_chunked_form_answers_a_4xx(server, cart_store, guest, kind):
    key, cookie = guest
    before = raw_dump(cart_store, key)
    content_type, encode = BODIES[kind]
    body = encode({"product_id": "sku-3", "quantity": "2.5"})
    status, location, _ = send(server, "/cart/items", body, content_type, cookie, chunked=True)
    assert status == 303 and location  # a form's error is flashed and redirected
    broken = b"--" + BOUNDARY.encode() + b"\r\nContent-Disposition: form-data; na"
    status, _, _ = send(server, "/cart/items", broken, content_type, cookie, chunked=True)
    assert 300 <= status < 500
    assert raw_dump(cart_store, key) == before


def test_a_form_the_app_parsed_first_is_capped_too(cart_store, products):
    """Flask-WTF's CSRFProtect reads the form before the cart route: still 16 KB at most."""
    app, _ = build_app(cart_store, products, WTF_CSRF_ENABLED=True)
    CSRFProtect(app)

    @app.get("/token")
    def token() -> Any:
        return jsonify(token=generate_csrf())

    with serve(app) as address:
        conn = http.client.HTTPConnection(*address, timeout=10)
        conn.request("GET", "/token")
        response = conn.getresponse()
        csrf = json.loads(response.read())["token"]
        cookie = response.getheader("Set-Cookie", "").split(";", 1)[0]
        conn.close()
        content_type, encode = BODIES["urlencoded"]
        fields = {"product_id": "sku-3", "csrf_token": csrf, "next": "/done"}
        status, _, answer = send(
            address,
            "/cart/items",
            encode({**fields, "note": "x" * 20000}),
            content_type,
            cookie,
            chunked=True,
        )
        assert (status, answer) == (303, None)  # refused, and flashed: a form is a page
        status, location, _ = send(
            address, "/cart/items", encode(fields), content_type, cookie, chunked=True
        )
        assert (status, location.rsplit("/", 1)[-1]) == (303, "done")
