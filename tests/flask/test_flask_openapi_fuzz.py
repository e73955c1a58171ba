"""openapi.yaml is true to the live routes, and no input gets a 500 (Hypothesis)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from werkzeug.wrappers import Request

import flask_cart
from flask_cart.config import DEFAULTS
from tests.flask.shop import add

SPEC_PATH = Path(flask_cart.__file__).parent / "openapi.yaml"
SPEC = OpenAPI.from_file_path(str(SPEC_PATH))
CHANGE_METHODS = ("post", "patch", "delete")
#: Routes whose change, sent again, changes nothing more (a contact address, unsubscribing):
#: they take no Idempotency-Key.
SAME_AGAIN_ROUTES = ("/cart/email", "/cart/unsubscribe/{token}")
ALLOWED = {200, 303, 400, 403, 404, 409, 410, 422}
NAVIGATE = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Sec-Fetch-Site": "none"}


def check(response: Any) -> None:
    """The response is documented: its status for the operation, its body's schema.

    An id that makes a URL no route matches (say "a\n" or "/x") gets the app's own 404.
    """
    if response.status_code in (404, 308) and not response.is_json:
        return
    assert response.status_code in ALLOWED, (response.status_code, response.data[:500])
    environ = dict(response.request.environ, CONTENT_LENGTH="0")
    environ["wsgi.input"] = io.BytesIO()  # the body was read by the app: only the route counts
    for prefix in ("/cart/items/", "/cart/add/", "/cart/link/", "/cart/signed/"):
        if environ["PATH_INFO"].startswith(prefix):
            environ["PATH_INFO"] = prefix + "id:1"  # ids may hold "/", which no template matches
    SPEC.validate_response(
        WerkzeugOpenAPIRequest(Request(environ)), WerkzeugOpenAPIResponse(response)
    )
    if response.status_code == 303:
        assert response.headers["Location"]
    elif response.mimetype == "text/html" and response.status_code == 403:
        assert "Your cart was not changed" in response.text  # a refused post's page
    elif response.mimetype == "text/html":  # a cart link's confirmation page
        assert response.status_code == 200 and '<form method="post"' in response.text
    else:
        assert response.is_json
        if response.status_code >= 400:
            assert set(response.json["error"]) == {"code", "message"}


def test_live_responses_match_the_spec(app, client, carts, products):
    responses = [
        client.get("/cart"),
        add(client, "sku-1", 2),
        add(client, "sku-2"),
        client.get("/cart?instance=wishlist"),
        client.patch("/cart/items/sku-1", json={"quantity": 4}),
        client.post("/cart/items/sku-1", json={"_method": "PATCH", "quantity": 2}),
        client.delete("/cart/items/sku-2"),
        client.post("/cart/items", data={"product_id": "sku-2", "next": "/x"}),
        client.post("/cart/items/sku-2", data={"_method": "DELETE"}),
        client.delete("/cart"),
        client.post("/cart", data={"_method": "DELETE"}),
        client.post("/cart", json={"_method": "DELETE"}),
        client.get("/cart?instance=nope"),
        add(client, "nope"),
        add(client, "limited", 9),
        add(client, "sku-1", 0),
        client.patch("/cart/items/sku-3", json={"quantity": 1}),
        client.delete("/cart/items/sku-3"),
        client.post("/cart/items", json={"product_id": "sku-1"}, headers={"Origin": "null"}),
        client.post("/cart/items", data="{", content_type="application/json"),
    ]
    now = carts.clock()
    add(client, "sku-1")
    carts.clock = lambda: now + 60
    responses.append(client.get("/cart"))
    products["sku-1"]["unit_cost"] = "NaN"  # bad catalogue data: the line shows unavailable
    carts.clock = lambda: now + 120
    responses.append(client.get("/cart"))
    assert responses[-1].json["items"][0]["unavailable_reason"] == "bad_product_data"
    responses.append(add(client, "sku-1"))  # 422 product_unavailable
    with app.test_request_context("/"):
        signed = carts.cart_link({"sku-3": 1}).split("localhost", 1)[1]
        expired = carts.cart_link({"sku-3": 1}, max_age=0.001).split("localhost", 1)[1]
    responses += [
        client.get("/cart/add/sku-3?qty=2&next=/x", headers=NAVIGATE),
        client.get("/cart/add/sku-3"),
        client.post("/cart/add/sku-3"),
        client.get("/cart/add/sku-3?qty=0", headers=NAVIGATE),
        client.get("/cart/link/sku-3:1,limited:9", headers=NAVIGATE),
        client.get("/cart/link/sku-3:1", headers={"Sec-Fetch-Dest": "image"}),
        client.get(signed, headers=NAVIGATE),
        client.post(signed),
        client.get(signed[:-3] + "abc", headers=NAVIGATE),
        client.get(expired, headers=NAVIGATE),  # a browser: 303, the error flashed
        client.get(expired),  # a script: the JSON 410
    ]
    statuses = set()
    for response in responses:
        check(response)
        statuses.add(response.status_code)
    assert statuses == {200, 303, 400, 403, 404, 410, 422}


def test_spec_lists_the_default_instances():
    raw = yaml.safe_load(SPEC_PATH.read_text())
    instance = raw["components"]["parameters"]["instance"]
    assert instance["schema"]["enum"] == list(DEFAULTS["CART_INSTANCES"])
    assert "CART_INSTANCES decides" in instance["description"].replace("\n", " ")


def test_spec_documents_idempotency_keys_and_503_on_every_change():
    raw = yaml.safe_load(SPEC_PATH.read_text())
    components = raw["components"]
    key = components["parameters"]["idempotencyKey"]
    assert (key["name"], key["in"], key["required"]) == ("Idempotency-Key", "header", False)
    assert (key["schema"]["minLength"], key["schema"]["maxLength"]) == (1, 255)
    changes = 0
    for path, item in raw["paths"].items():
        for method, operation in item.items():
            if method not in CHANGE_METHODS or path in SAME_AGAIN_ROUTES:
                continue
            changes += 1
            refs = [p.get("$ref", "") for p in operation.get("parameters", [])]
            assert "#/components/parameters/idempotencyKey" in refs, (method, path)
            ref = operation["responses"]["503"]["$ref"].rsplit("/", 1)[-1]
            description = " ".join(components["responses"][ref]["description"].split())
            assert "may or may not have been applied" in description, (method, path)
            assert "same Idempotency-Key is safe" in description, (method, path)
    assert changes == 10


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "product_id": st.sampled_from(["sku-1", "limited", "nope", ""]) | JSON,
        "quantity": st.sampled_from([0, 1, 2, 999, 1000, -1, 2**63, True, 1.0, "2"]) | JSON,
        "_method": st.sampled_from(["PATCH", "DELETE", "patch", "GET"]) | JSON,
        "unit_cost": JSON,
        "next": st.sampled_from(["/ok", "//evil", "https://evil/"]) | st.text(max_size=20),
    },
)
BODIES = FIELDS | JSON
PRODUCT_IDS = st.sampled_from(["sku-1", "sku-2", "limited", "nope"]) | st.text(
    min_size=1, max_size=140
).filter(lambda s: s.strip("./") != "")
ROUTES = [
    ("GET", "/cart"),
    ("DELETE", "/cart"),
    ("POST", "/cart"),
    ("POST", "/cart/items"),
    ("PATCH", "/cart/items/{}"),
    ("DELETE", "/cart/items/{}"),
    ("POST", "/cart/items/{}"),
    ("GET", "/cart/add/{}"),
    ("POST", "/cart/add/{}"),
    ("GET", "/cart/link/{}"),
    ("GET", "/cart/signed/{}"),
]
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize(("method", "path"), ROUTES)
@FUZZ
@given(
    body=BODIES,
    product_id=PRODUCT_IDS,
    instance=st.none() | st.sampled_from(["cart", "wishlist", ""]) | st.text(max_size=10),
    as_form=st.booleans(),
    qty=st.none() | st.sampled_from(["1", "0", "999", "2.5", "-1"]) | st.text(max_size=12),
    navigate=st.booleans(),
)
def test_no_input_gets_a_500(
    client, method, path, body, product_id, instance, as_form, qty, navigate
):
    url = path.format(quote(product_id, safe=""))
    query = {}
    if instance is not None:
        query["instance"] = instance
    link = not path.startswith("/cart/items") and path != "/cart"
    if link and qty is not None:
        query["qty"] = qty
    headers = NAVIGATE if link and navigate else {}
    if as_form and isinstance(body, dict):
        data = {str(k): str(v) for k, v in body.items()}
        response = client.open(url, method=method, data=data, query_string=query, headers=headers)
    else:
        response = client.open(url, method=method, json=body, query_string=query, headers=headers)
    check(response)


@pytest.mark.parametrize(("method", "path"), ROUTES)
@FUZZ
@given(
    raw=st.binary(max_size=300),
    content_type=st.sampled_from(
        [
            "application/json",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "text/plain",
            "application/json; charset=latin-1",
            "",
        ]
    ),
)
def test_no_raw_body_gets_a_500(client, method, path, raw, content_type):
    response = client.open(
        path.format("sku-1"), method=method, data=raw, content_type=content_type or None
    )
    check(response)
