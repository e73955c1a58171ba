"""``python -m demo_app``: initialise the database and serve the shop on http://127.0.0.1:5000.

Environment: CART_STORE=redis, DATABASE_URL (e.g. PostgreSQL), CART_SYNC_SECONDS,
CART_REDIS_URL, SECRET_KEY; DEMO_HOST and DEMO_PORT change where it listens.
"""

from __future__ import annotations

import os
import sys

from sqlalchemy.engine import make_url

from . import create_app, init_db
from .seed import DEMO_USERS


def main() -> int:
    host = os.environ.get("DEMO_HOST", "127.0.0.1")
    port = int(os.environ.get("DEMO_PORT", "5000"))
    app = create_app({"DEMO_INIT_DB": False})
    with app.app_context():
        try:
            created = init_db()
        except Exception as error:  # a friendly word instead of a traceback
            uri = app.config["SQLALCHEMY_DATABASE_URI"]
            print(f"demo_app: cannot initialise the database at {uri}: {error}", file=sys.stderr)
            return 1
        store = app.config["CART_STORE"]
    database = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).render_as_string(hide_password=True)
    print(f"\n  {app.config['DEMO_SHOP_NAME']}: a flask-cart demo shop")
    print(f"  database: {database}")
    print(f"  carts:    {store} store, sync window {app.config['CART_SYNC_SECONDS']} s")
    if created:
        users = sum("@" in name for name in created)
        print(f"  created:  {len(created) - users} products, {users} demo users")
    print("  demo users (e-mail / password):")
    for email, password, _name in DEMO_USERS:
        print(f"    {email} / {password}")
    print(f"\n  open http://{host}:{port}/   (Ctrl+C stops it)\n", flush=True)
    app.run(host=host, port=port, debug=False, use_reloader=False, threaded=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
