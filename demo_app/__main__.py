"""``python -m demo_app``: initialise the database and serve the shop on http://127.0.0.1:5000.

Environment: CART_STORE=redis, DATABASE_URL (e.g. PostgreSQL), CART_SYNC_SECONDS,
CART_REDIS_URL, SECRET_KEY; DEMO_HOST and DEMO_PORT change where it listens; DEMO_QA,
DEMO_ABANDONED_STAGES and DEMO_SERVER_NAME (see demo_app.config).
"""

from __future__ import annotations

import errno
import os
import socket
import sys

from sqlalchemy.engine import make_url

from . import create_app, init_db
from .seed import DEMO_USERS


def port_in_use(host: str, port: int) -> bool:
    """Whether another program listens on `port` (the demo would fail to start there)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
        try:
            probe.bind((host, port))
        except OSError as error:
            return error.errno in (errno.EADDRINUSE, errno.EACCES)
    return False


def free_port(host: str, after: int) -> int | None:
    """The first free port after `after` (to suggest one), or None."""
    for port in range(after + 1, min(after + 50, 65535) + 1):
        if not port_in_use(host, port):
            return port
    return None


def main() -> int:
    host = os.environ.get("DEMO_HOST", "127.0.0.1")
    raw_port = os.environ.get("DEMO_PORT", "5000")
    try:
        port = int(raw_port)
        if not 0 < port < 65536:
            raise ValueError
    except ValueError:
        print(f"demo_app: DEMO_PORT must be a port number, not {raw_port!r}", file=sys.stderr)
        return 2
    if port_in_use(host, port):
        other = free_port(host, port)
        suggestion = f"run DEMO_PORT={other} make demo" if other else "set DEMO_PORT"
        print(f"demo_app: port {port} is in use: {suggestion}", file=sys.stderr)
        return 1
    overrides: dict[str, object] = {"DEMO_INIT_DB": False}
    if not os.environ.get("DEMO_SERVER_NAME"):
        # The reminders' links name the address the demo serves on.
        overrides["SERVER_NAME"] = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    app = create_app(overrides)
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
    stages = ", ".join(app.config.get("CART_ABANDONED_STAGES") or ("1h", "24h", "72h"))
    if app.config.get("DEMO_QA"):
        print(f"  QA:       http://{host}:{port}/status/abandoned (abandoned after {stages};")
        print("            reminders go to the outbox listed there)")
    else:
        print("  QA:       DEMO_QA=1 DEMO_ABANDONED_STAGES=30s make demo opens the page of")
        print("            abandoned carts and their reminder e-mails (/status/abandoned)")
    print(f"\n  open http://{host}:{port}/   (Ctrl+C stops it)\n", flush=True)
    app.run(host=host, port=port, debug=False, use_reloader=False, threaded=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
