"""Check the built distributions: ``python scripts/check_dist.py [DIST_DIR]`` (``make dist-check``).

- the sdist carries the whole test suite, the docs sources, the demo shop, the benchmarks,
  the scripts, the Makefile and the CHANGELOG: every file git tracks under those, when run
  from a git checkout, and a fixed list of essentials in any case;
- the wheel carries ``flask_cart`` with ``py.typed``, ``openapi.yaml`` and the shopper
  pages' templates, and nothing else;
- the wheel installs into a fresh venv, where ``flask_cart`` imports from site-packages
  with its data files beside it;
- in that venv, with nothing but ``pip install flask-cart``, the quick start runs on the
  embedded SQLite default (a product loader, an add, ``GET /cart``: 200), and
  ``CART_STORE = "redis"`` without redis-py is one clear error naming the extra.

Prints one line per check and exits 1 at the first failure.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_TREES = ("tests", "docs", "demo_app", "bench", "scripts", ".ci")
TEMPLATES = tuple(
    f"flask_cart/templates/flask_cart/{name}.html" for name in ("layout", "confirm", "error")
)
ESSENTIAL = (
    "CHANGELOG.md",
    "README.md",
    "LICENSE",
    "Makefile",
    "setup.cfg",
    "pyproject.toml",
    "MANIFEST.in",
    ".pre-commit-config.yaml",
    "tests/conftest.py",
    "tests/helpers.py",
    "tests/flask/conftest.py",
    "tests/flask/shop.py",
    "tests/e2e/conftest.py",
    "docs/conf.py",
    "docs/index.rst",
    "demo_app/__init__.py",
    "demo_app/templates/base.html",
    "demo_app/static/cart.js",
    "bench/RESULTS.md",
    "scripts/ensure_services.sh",
    "scripts/lowest_pins.py",
    ".ci/run",
    "flask_cart/py.typed",
    "flask_cart/openapi.yaml",
    *TEMPLATES,
)
PACKAGE_DATA = ("flask_cart/py.typed", "flask_cart/openapi.yaml", *TEMPLATES)
IMPORT_CHECK = """
import importlib.resources, pathlib, sys
import flask_cart
here = pathlib.Path(flask_cart.__file__).resolve().parent
assert "site-packages" in here.parts, f"imported from {here}, not from the venv"
files = importlib.resources.files("flask_cart")
for name in ("py.typed", "openapi.yaml", "templates/flask_cart/confirm.html"):
    assert files.joinpath(name).is_file(), f"{name} missing"
from flask_cart import Cart, CartManager, current_cart  # noqa: F401
print(f"flask_cart {flask_cart.__version__} imports from {here}")
"""
# The quick start with only `pip install flask-cart`: no Flask-SQLAlchemy, Flask-Login or
# redis-py in the venv; the carts live in the embedded SQLite default.
PLAIN_QUICK_START = """
import importlib.util, tempfile
from decimal import Decimal
for extra in ("flask_sqlalchemy", "flask_login", "redis"):
    assert importlib.util.find_spec(extra) is None, f"{extra} is installed: not a plain install"
from flask import Flask
from flask_cart import CartManager

app = Flask(__name__, instance_path=tempfile.mkdtemp())
app.config["SECRET_KEY"] = "change-me"
carts = CartManager(app)
PRODUCTS = {"sku-1": {"unit_cost": Decimal("9.99"), "name": "Mug", "stock": 12}}


@carts.product_loader
def load_product(product_id):
    return PRODUCTS.get(product_id)


client = app.test_client()
added = client.post("/cart/items", json={"product_id": "sku-1", "quantity": 2})
assert added.status_code == 200, added.get_data(as_text=True)
cart = client.get("/cart")
assert cart.status_code == 200 and cart.json["quantity"] == 2, cart.get_data(as_text=True)
redis_app = Flask(__name__)
redis_app.config.update(SECRET_KEY="x", CART_STORE="redis")
try:
    CartManager(redis_app)
except ImportError as exc:
    assert "pip install 'flask-cart[redis]'" in str(exc) and "\\n" not in str(exc), exc
else:
    raise AssertionError("CART_STORE='redis' without redis-py raised nothing")
print("plain install: the quick start answers 200 on the SQLite default; redis says its extra")
"""


def fail(message: str) -> None:
    print(f"dist-check: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def one(dist: Path, pattern: str) -> Path:
    found = sorted(dist.glob(pattern))
    if len(found) != 1:
        fail(f"expected one {pattern} in {dist}, found {[p.name for p in found]}")
    return found[0]


def tracked_files() -> set[str]:
    """The files git tracks under the shipped trees ({} outside a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--", *SHIPPED_TREES],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return set()
    return {line for line in out.splitlines() if (ROOT / line).is_file()}


def check_sdist(sdist: Path) -> None:
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    wanted = set(ESSENTIAL) | tracked_files()
    missing = sorted(wanted - names)
    if missing:
        fail(f"{sdist.name} lacks {len(missing)} file(s): {', '.join(missing[:20])}")
    stray = sorted(n for n in names if "__pycache__" in n or n.startswith("docs/_build/"))
    if stray:
        fail(f"{sdist.name} carries build output: {', '.join(stray[:10])}")
    print(f"dist-check: {sdist.name}: {len(names)} entries, all {len(wanted)} expected files")


def check_wheel(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
    missing = [name for name in PACKAGE_DATA if name not in names]
    if missing:
        fail(f"{wheel.name} lacks {', '.join(missing)}")
    foreign = sorted(
        n for n in names if not n.startswith(("flask_cart/", "flask_cart-", "flask_cart."))
    )
    if foreign:
        fail(f"{wheel.name} carries files outside flask_cart: {', '.join(foreign[:10])}")
    print(f"dist-check: {wheel.name}: {len(names)} files, all {len(PACKAGE_DATA)} data files")


def check_install(wheel: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="flask-cart-dist-") as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        python = str(venv / "bin" / "python")
        subprocess.run(
            [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
            check=True,
        )
        # Run outside the checkout, so the source tree cannot shadow the installed package.
        result = subprocess.run([python, "-c", IMPORT_CHECK], cwd=tmp)
        if result.returncode:
            fail(f"{wheel.name} does not import from a fresh venv")
        result = subprocess.run([python, "-c", PLAIN_QUICK_START], cwd=tmp)
        if result.returncode:
            fail(f"the quick start does not run with only `pip install {wheel.name}`")


def main() -> None:
    dist = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "dist").resolve()
    check_sdist(one(dist, "*.tar.gz"))
    wheel = one(dist, "*.whl")
    check_wheel(wheel)
    check_install(wheel)
    print("dist-check: ok")


if __name__ == "__main__":
    main()
