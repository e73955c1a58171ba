"""``pip install flask-cart`` alone: the quick start runs on the embedded SQLite default, and
a store whose extra is missing is one clear error naming the extra. (``make dist-check``
runs the same quick start in a fresh venv with only the wheel installed.)"""

from __future__ import annotations

import configparser
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from flask import Flask

from flask_cart import CartManager

ROOT = Path(__file__).resolve().parent.parent


def run_without(modules: tuple[str, ...], code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter where `modules` cannot be imported."""
    blocked = "".join(f"sys.modules[{name!r}] = None\n" for name in modules)
    script = f"import sys\n{blocked}{textwrap.dedent(code)}"
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(ROOT), "INSTANCE": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )


def test_cart_store_redis_without_redis_py_is_one_line_naming_the_extra(tmp_path):
    result = run_without(
        ("redis",),
        """
        from flask import Flask
        from flask_cart import CartManager
        app = Flask(__name__)
        app.config.update(SECRET_KEY="x", CART_STORE="redis")
        try:
            CartManager(app)
        except ImportError as exc:
            print(type(exc).__name__, str(exc), sep=": ")
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert line == (
        "ImportError: CART_STORE = 'redis' needs the 'redis' package, which is not "
        "installed: pip install 'flask-cart[redis]'"
    )


def test_the_quick_start_runs_without_flask_sqlalchemy_flask_login_or_redis(tmp_path):
    result = run_without(
        ("flask_sqlalchemy", "flask_login", "flask_wtf", "redis"),
        """
        import os
        from decimal import Decimal
        from flask import Flask
        from flask_cart import CartManager
        app = Flask(__name__, instance_path=os.environ["INSTANCE"])
        app.config.update(SECRET_KEY="change-me", CART_STORE_TIMEOUT=30)
        carts = CartManager(app)
        @carts.product_loader
        def load_product(product_id):
            return {"sku-1": {"unit_cost": Decimal("9.99"), "name": "Mug"}}.get(product_id)
        client = app.test_client()
        added = client.post("/cart/items", json={"product_id": "sku-1", "quantity": 2})
        cart = client.get("/cart")
        print(added.status_code, cart.status_code, cart.json["quantity"])
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["200", "200", "2"]


def test_db_that_is_not_flask_sqlalchemy_names_the_extra(tmp_path):
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(SECRET_KEY="x")
    with pytest.raises(TypeError, match=r"pip install 'flask-cart\[sqlalchemy\]'"):
        CartManager(app, db=object())
    assert "cart" not in app.extensions


def test_sqlalchemy_is_a_base_requirement_and_flask_sqlalchemy_an_extra():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    base = config["options"]["install_requires"].split()
    extra = config["options.extras_require"]["sqlalchemy"].split()
    assert "sqlalchemy>=2.0.16" in base
    assert not any(line.startswith("flask-sqlalchemy") for line in base)
    assert "flask-sqlalchemy>=3.1" in extra
