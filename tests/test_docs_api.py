"""The API page (docs/api.rst) names every public name: it is built with Sphinx's autodoc
(docs/conf.py, without the HTML theme and Markdown pages it does not need), and every name
of ``flask_cart.__all__``, every signal, every public method or property of `CartManager`
and of the request cart (`RequestCart`, with what it inherits from `Cart`) must be among the
objects it describes.
"""

from __future__ import annotations

import functools
import inspect
import io
import shutil
from pathlib import Path
from typing import Any

import pytest

import flask_cart
from flask_cart import Cart, CartManager, signals
from flask_cart.request_cart import RequestCart

sphinx_application = pytest.importorskip("sphinx.application")

DOCS = Path(__file__).resolve().parent.parent / "docs"
REQUEST_CART = "flask_cart.request_cart.RequestCart"
#: The request cart's seam for flask-cart's own links and recovery: kept off the API page.
INTERNAL = {"run_store_merge", "send_unless_replayed", "being_merged"}


def public_members(cls: type) -> set[str]:
    """The public methods and properties of `cls`, inherited ones included."""
    kinds = (staticmethod, classmethod, property, functools.cached_property)
    return {
        name
        for name in dir(cls)
        if not name.startswith("_")
        and (
            isinstance(inspect.getattr_static(cls, name), kinds)
            or inspect.isfunction(inspect.getattr_static(cls, name))
        )
    }


@pytest.fixture(scope="module")
def api_page(tmp_path_factory: pytest.TempPathFactory) -> tuple[set[str], str]:
    """The Python objects the built API page describes, and Sphinx's warnings."""
    root = tmp_path_factory.mktemp("docs-api")
    source = root / "source"
    source.mkdir()
    shutil.copy(DOCS / "api.rst", source / "api.rst")
    warnings = io.StringIO()
    app = sphinx_application.Sphinx(
        srcdir=str(source),
        confdir=str(DOCS),
        outdir=str(root / "out"),
        doctreedir=str(root / "doctrees"),
        buildername="dummy",
        confoverrides={
            "root_doc": "api",
            "extensions": ["sphinx.ext.autodoc", "sphinx.ext.doctest"],
        },
        status=None,
        warning=warnings,
        freshenv=True,
    )
    app.build()
    domain: Any = app.env.get_domain("py")
    return set(domain.objects), warnings.getvalue()


def test_every_name_of_the_package_is_on_the_api_page(api_page):
    objects, warnings = api_page
    missing = sorted(n for n in flask_cart.__all__ if f"flask_cart.{n}" not in objects)
    assert not missing, f"docs/api.rst misses {missing}\n{warnings}"


def test_every_signal_is_on_the_api_page(api_page):
    objects, warnings = api_page
    missing = sorted(n for n in signals.__all__ if f"flask_cart.signals.{n}" not in objects)
    assert not missing, f"docs/api.rst misses the signals {missing}\n{warnings}"


def test_every_public_method_of_the_extension_is_on_the_api_page(api_page):
    objects, warnings = api_page
    names = public_members(CartManager)
    assert {"cart", "get", "settings", "cart_link", "recovery_url"} <= names
    missing = sorted(n for n in names if f"flask_cart.CartManager.{n}" not in objects)
    assert not missing, f"docs/api.rst misses CartManager.{missing}\n{warnings}"


def test_every_public_method_of_the_request_cart_is_on_the_api_page(api_page):
    objects, warnings = api_page
    names = public_members(RequestCart) - INTERNAL
    assert {"sync_age", "stored", "refresh", "token", "total_cost"} <= names
    assert not any(f"{REQUEST_CART}.{name}" in objects for name in INTERNAL)

    def documented(name: str) -> bool:
        inherited = name in public_members(Cart) and f"flask_cart.Cart.{name}" in objects
        return f"{REQUEST_CART}.{name}" in objects or inherited

    missing = sorted(n for n in names if not documented(n))
    assert not missing, f"docs/api.rst misses the request cart's {missing}\n{warnings}"


def test_the_api_page_shows_no_constructor_entries(api_page):
    objects, _ = api_page
    noise = sorted(n for n in objects if n.rsplit(".", 1)[-1] in ("__init__", "__new__"))
    assert not noise
