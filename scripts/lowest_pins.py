"""Print setup.cfg's runtime and test requirements pinned to their declared lower bounds.

Used by ``make test-lowest``: every requirement with a ``>=`` floor becomes ``name==floor``
(its environment marker kept), so the suite runs on the oldest releases the package claims
to support. Requirements without a floor (the linters) are left out.

    python scripts/lowest_pins.py [setup.cfg] [extra ...]   (default extra: test)
"""

from __future__ import annotations

import configparser
import re
import sys
from pathlib import Path

REQUIREMENT = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*(\[[^\]]*\])?)\s*(?P<spec>[^;]*?)\s*(;\s*(?P<marker>.*))?$"
)
FLOOR = re.compile(r">=\s*([0-9][^,\s]*)")


def requirements(path: Path, extras: list[str]) -> list[str]:
    config = configparser.ConfigParser()
    config.read(path)
    lines = config["options"]["install_requires"].splitlines()
    for extra in extras:
        lines += config["options.extras_require"][extra].splitlines()
    return [line.strip() for line in lines if line.strip()]


def pin(requirement: str) -> str | None:
    """`requirement` pinned to its floor ("flask>=2.3" -> "flask==2.3"); None without one."""
    match = REQUIREMENT.match(requirement)
    if match is None:
        raise ValueError(f"cannot read the requirement {requirement!r}")
    floor = FLOOR.search(match["spec"])
    if floor is None:
        return None
    pinned = f"{match['name']}=={floor[1]}"
    return f"{pinned}; {match['marker']}" if match["marker"] else pinned


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else Path("setup.cfg")
    extras = argv[2:] or ["test"]
    seen = set()
    for requirement in requirements(path, extras):
        pinned = pin(requirement)
        if pinned is not None and pinned not in seen:
            seen.add(pinned)
            print(pinned)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
