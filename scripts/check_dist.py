"""Check the built distributions: ``python scripts/check_dist.py [DIST_DIR]`` (``make dist-check``).

- the sdist carries the whole test suite, the docs sources, the demo shop, the benchmarks,
  the scripts, the Makefile and the CHANGELOG: every file git tracks under those, when run
  from a git checkout, and a fixed list of essentials in any case;
- the wheel carries ``flask_cart`` with ``py.typed`` and ``openapi.yaml``, and nothing else;
- the wheel installs into a fresh venv, where ``flask_cart`` imports from site-packages
  with both data files beside it.

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
)
PACKAGE_DATA = ("flask_cart/py.typed", "flask_cart/openapi.yaml")
IMPORT_CHECK = """
import importlib.resources, pathlib, sys
import flask_cart
here = pathlib.Path(flask_cart.__file__).resolve().parent
assert "site-packages" in here.parts, f"imported from {here}, not from the venv"
for name in ("py.typed", "openapi.yaml"):
    assert importlib.resources.files("flask_cart").joinpath(name).is_file(), f"{name} missing"
from flask_cart import Cart, CartManager, current_cart  # noqa: F401
print(f"flask_cart {flask_cart.__version__} imports from {here}")
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
    print(f"dist-check: {wheel.name}: {len(names)} files, py.typed and openapi.yaml included")


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


def main() -> None:
    dist = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "dist").resolve()
    check_sdist(one(dist, "*.tar.gz"))
    wheel = one(dist, "*.whl")
    check_wheel(wheel)
    check_install(wheel)
    print("dist-check: ok")


if __name__ == "__main__":
    main()
