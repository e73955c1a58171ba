"""Sphinx configuration of the flask-cart documentation (``make docs``)."""

from __future__ import annotations

import importlib
import os
import re
import socket
import sys
from typing import Any

sys.path.insert(0, os.path.abspath(".."))

project = "flask-cart"
author = "flask-cart contributors"
copyright = "flask-cart contributors"
release = importlib.import_module("flask_cart").__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
# The docstrings write names in single backticks, as Markdown does: show them as code.
default_role = "code"
html_theme = "furo"
html_title = f"flask-cart {release}"
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
# Constructors are shown in the class's own signature: no separate __init__ or __new__ entry.
autodoc_class_signature = "mixed"
myst_heading_anchors = 3


def _redis_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        return False
    return True


# The examples run against real stores: SQLite in a temporary instance folder, and Redis on
# 127.0.0.1:6379 under a key prefix of their own. Without a Redis server the Redis examples
# are skipped, except in CI (CI=true), where they must run.
REDIS_SKIP = not _redis_up() and os.environ.get("CI") != "true"
# Each example group works in a temporary folder of its own: `Flask(__name__)` takes it as
# its root, so the SQLite default and Flask-SQLAlchemy's relative URIs land in its
# instance folder.
doctest_global_setup = f"""
import logging, os, tempfile, uuid
__name__ = "shop"
# The examples of outages log them on the flask_cart logger: keep that out of the output.
logging.getLogger("flask_cart").addHandler(logging.NullHandler())
REDIS_SKIP = {REDIS_SKIP!r}
OLD_CWD = os.getcwd()
INSTANCE = tempfile.mkdtemp(prefix="flask-cart-docs-")
os.chdir(INSTANCE)
PREFIX = "flask_cart_docs:" + uuid.uuid4().hex + ":"
"""
doctest_global_cleanup = """
import shutil
os.chdir(OLD_CWD)
shutil.rmtree(INSTANCE, ignore_errors=True)
if not REDIS_SKIP:
    import redis as _redis
    _client = _redis.Redis()
    for _key in _client.scan_iter(match=PREFIX + "*"):
        _client.delete(_key)
"""


def _config_keys() -> list[str]:
    """Every CART_* key flask-cart sets a default for."""
    for name in ("flask_cart.config", "flask_cart.manager"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        defaults = getattr(module, "DEFAULTS", None)
        if defaults is not None:
            return sorted(defaults)
    raise RuntimeError("flask_cart's DEFAULTS not found")


def _check_config_page(app: Any, docname: str, source: list[str]) -> None:
    """Warn (an error under -W) when the configuration page misses a CART_* key."""
    if docname != "config":
        return
    documented = set(re.findall(r"^\.\. data:: (CART_\w+)", source[0], re.M))
    missing = [key for key in _config_keys() if key not in documented]
    if missing:
        from sphinx.util import logging

        logging.getLogger(__name__).warning(
            "config.rst does not document %s", ", ".join(missing), location="config"
        )


def _only_errors_of_the_package(
    app: Any, what: str, name: str, obj: Any, skip: bool, options: Any
) -> bool | None:
    """``automodule:: flask_cart`` lists the package's exceptions; the other names of its
    ``__all__`` have sections of their own on the API page."""
    if what == "module" and not (isinstance(obj, type) and issubclass(obj, Exception)):
        return True
    return None


def _no_constructor_signature(
    app: Any, what: str, name: str, obj: Any, options: Any, signature: Any, annotation: Any
) -> tuple[str, Any] | None:
    """The request cart is made by flask-cart, never by hand: show no constructor."""
    if what == "class" and name == "flask_cart.request_cart.RequestCart":
        return "", annotation
    return None


def setup(app: Any) -> None:
    app.connect("source-read", _check_config_page)
    app.connect("autodoc-skip-member", _only_errors_of_the_package)
    app.connect("autodoc-process-signature", _no_constructor_signature)
