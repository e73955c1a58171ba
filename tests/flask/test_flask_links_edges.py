"""Cart links at their edges: a speculative (prefetch / prerender) navigation changes no
cart, and no `next` leads off the site."""

from __future__ import annotations

import pytest

from tests.flask.test_flask_links import NAVIGATE, lines


@pytest.mark.parametrize(
    "purpose",
    [
        {"Sec-Purpose": "prefetch"},  # Chromium speculation-rules prefetch
        {"Sec-Purpose": "prefetch;prerender"},  # Chromium prerender (also the omnibox's)
        {"Purpose": "prefetch"},  # older Chromium / Safari
        {"X-Moz": "prefetch"},  # Firefox
    ],
)
@pytest.mark.parametrize("url", ["/cart/add/sku-1?qty=5", "/cart/link/sku-1:5"])
def test_a_prefetch_or_prerender_navigation_changes_nothing(client, purpose, url):
    """A browser prefetching or prerendering a link sends navigate/document too: the user
    clicked nothing, so the cart must stay as it is."""
    client.get("/cart/add/sku-3", headers=NAVIGATE)
    client.get(url, headers={**NAVIGATE, **purpose})
    assert lines(client) == {"sku-3": 1}


@pytest.mark.parametrize(
    "evil",
    [
        "//evil.example",
        "/\\evil.example",
        " //evil.example",
        "\t//evil.example",
        "/\t/evil.example",
        "/\r\n/evil.example",
        "http://localhost@evil.example/",
        "http://evil.example#@localhost",
        "http:evil.example",
        "http:/evil.example",
        "///evil.example",
        "\u3000//evil.example",
        "\ufeff//evil.example",
        "JaVaScRiPt:alert(1)",
        "data:text/html,x",
        "//localhost/x",
        "http://localhost%2F@evil.example/",
    ],
)
def test_next_never_leaves_the_site(client, evil):
    response = client.get("/cart/add/sku-1", query_string={"next": evil}, headers=NAVIGATE)
    assert response.status_code == 303 and response.headers["Location"] == "/"
