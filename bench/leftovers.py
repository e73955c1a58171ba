"""Remove what a bench run wrote: its SQL tables and its Redis keys, nothing else.

Keys are deleted by SCAN under the run's own prefix (tests.conftest's `delete_prefix`; never
KEYS or FLUSH); tables are every table the store's ``create_all`` made, read from the store's
own metadata, so a table added to the store later is dropped too.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from tests.conftest import delete_prefix  # noqa: E402

__all__ = ["delete_prefix", "drop_tables"]


def drop_tables(store: Any) -> None:
    """Drop the SQL store's tables (carts, abandoned-cart claims and every other table on its
    metadata named after the carts table) and close its engine's connections."""
    metadata = store.table.metadata
    name = store.table.name
    own = [t for t in metadata.sorted_tables if t.name == name or t.name.startswith(f"{name}_")]
    metadata.drop_all(store.engine, tables=own, checkfirst=True)
    store.engine.dispose()
