"""`flask cart abandoned --send`: reminders e-mailed through the app's Flask-Mail to a real
SMTP server on a loopback port (aiosmtpd's Controller in this process), on every store.

A reminder goes once: a second run, or two runs at once, send nothing more; one the server
refused, or could not take (down), is sent by the next run.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

pytest.importorskip("flask_mail")
pytest.importorskip("aiosmtpd")

from aiosmtpd.controller import Controller
from flask_mail import Mail

from flask_cart.lines import Limits, Line, Owner
from flask_cart.stores.base import CartKey, CartStore
from flask_cart.stores.redis import RedisStore
from tests.test_cleanup import YEAR, age_cart, cli_app

HOUR = timedelta(hours=1)
GUEST = "5f0c7c4e-2a0e-4c1d-9d7e-3f2b8a6c1e00"
OTHER = "5f0c7c4e-2a0e-4c1d-9d7e-3f2b8a6c1e01"


class Inbox:
    """An aiosmtpd handler: keeps each message; refuses recipients at refuse.test."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.raw: list[bytes] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.endswith("@refuse.test"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.raw.append(envelope.content)
        return "250 Message accepted"

    def to(self) -> list[str]:
        return sorted(str(m["To"]) for m in self.messages)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def guest(
    store: CartStore, name: str, address: str | None, *, age: timedelta = 2 * HOUR
) -> CartKey:
    key = CartKey(name)
    store.add(key, Line("sku-1", 2, "9.99"), owner=Owner(None, ttl=YEAR), limits=Limits())
    if address is not None:
        assert store.set_email(key, address)
    age_cart(store, key, age)
    return key


def customer(store: CartStore, user: str) -> CartKey:
    key = CartKey(f"customer:{user}")
    store.add(key, Line("sku-1", 1, "9.99"), owner=Owner(user, ttl=YEAR), limits=Limits())
    age_cart(store, key, 2 * HOUR)
    return key


def send(store: CartStore, port: int, *args: str, app_hook: Any = None) -> Any:
    """`flask cart abandoned --send --json ARGS` on `store`, mail to `port`; the Result."""
    app = cli_app(
        store,
        SERVER_NAME="shop.test",
        SECRET_KEY="reminder-tests",
        CART_STORE_TIMEOUT=30,
        CART_SHOP_NAME="Test Shop",
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=port,
        MAIL_DEFAULT_SENDER="shop@shop.test",
    )
    Mail(app)
    if app_hook is not None:
        app_hook(app)
    try:
        return app.test_cli_runner().invoke(args=["cart", "abandoned", "--send", "--json", *args])
    finally:
        used = app.extensions["cart"].get_store(app)
        if hasattr(used, "engine"):
            used.engine.dispose()


def sent_lines(result: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def test_each_reminder_is_mailed_once_with_one_click_unsubscribe(
    store: CartStore, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    guest(store, GUEST, "ann@example.com")
    customer(store, "7")
    customer(store, "8")  # the shop knows no address for 8

    def hook(app: Flask) -> None:
        app.extensions["cart"].customer_email(lambda cid: "bob@example.com" if cid == "7" else None)

    result = send(store, port, app_hook=hook)
    assert result.exit_code == 0, (result.output, result.exception)
    assert inbox.to() == ["ann@example.com", "bob@example.com"]
    lines = {r["identifier"]: r for r in sent_lines(result)}
    assert lines[GUEST]["sent"] is True and lines[GUEST]["email"] == "ann@example.com"
    assert lines["customer:7"]["sent"] is True and lines["customer:7"]["email"] is None
    assert lines["customer:8"]["sent"] is False
    message = next(m for m in inbox.messages if m["To"] == "ann@example.com")
    unsubscribe = lines[GUEST]["unsubscribe_url"]
    assert unsubscribe.startswith("http://shop.test/cart/unsubscribe/")
    assert message["List-Unsubscribe"] == f"<{unsubscribe}>"
    raw = inbox.raw[inbox.messages.index(message)].decode()  # as received: on one line,
    assert f"\nList-Unsubscribe: <{unsubscribe}>\r\n" in raw  # not RFC 2047 encoded words
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["From"] == "shop@shop.test"
    assert "Test Shop" in message["Subject"]
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    body = text.get_content()
    assert "2 x sku-1" in body and "19.98 USD" in body
    assert lines[GUEST]["recovery_url"] in body and unsubscribe in body
    assert unsubscribe in html.get_content()
    if os.environ.get("SHOW_REMINDER"):
        print("\n" + inbox.raw[inbox.messages.index(message)].decode())
    # Sent once: the next run sends nothing (customer 8, without an address, neither).
    again = send(store, port, app_hook=hook)
    assert again.exit_code == 0 and sent_lines(again) == []
    assert len(inbox.messages) == 2


def test_an_unsubscribed_or_changed_cart_gets_no_mail(
    store: CartStore, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    key = guest(store, GUEST, "ann@example.com")
    assert store.unsubscribe(key, store.load(key).uid)
    result = send(store, port)
    assert result.exit_code == 0, (result.output, result.exception)
    assert inbox.messages == [] and sent_lines(result) == []


def test_a_refused_recipient_is_sent_by_the_next_run(
    store: CartStore, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    key = guest(store, GUEST, "ann@refuse.test")
    guest(store, OTHER, "cy@example.com")
    result = send(store, port)
    assert result.exit_code == 0, (result.output, result.exception)
    assert inbox.to() == ["cy@example.com"]
    assert "1 refused" in result.output
    assert assert_no_server_detail(result)
    assert store.set_email(key, "ann@example.com")  # the guest fixes the address
    again = send(store, port)
    assert [r["identifier"] for r in sent_lines(again)] == [GUEST]
    assert inbox.to() == ["ann@example.com", "cy@example.com"]


def assert_no_server_detail(result: Any) -> bool:
    return "Traceback" not in result.output


def test_a_mail_server_down_fails_the_run_and_the_next_run_sends(
    store: CartStore, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    for i in range(3):
        guest(store, f"5f0c7c4e-2a0e-4c1d-9d7e-3f2b8a6c1e1{i}", f"g{i}@example.com")
    down = send(store, free_port())
    assert down.exit_code == 1
    assert "mail server" in down.output and "next run" in down.output
    assert inbox.messages == []
    result = send(store, port)
    assert result.exit_code == 0, (result.output, result.exception)
    assert len(inbox.messages) == 3


def test_without_flask_mail_a_clear_error_before_anything_is_claimed(store: CartStore) -> None:
    guest(store, GUEST, "ann@example.com")
    app = cli_app(store, SERVER_NAME="shop.test", SECRET_KEY="x", CART_STORE_TIMEOUT=30)
    result = app.test_cli_runner().invoke(args=["cart", "abandoned", "--send"])
    assert result.exit_code == 1
    assert "Flask-Mail" in result.output and "nothing was reported" in result.output
    json_run = app.test_cli_runner().invoke(args=["cart", "abandoned", "--json"])
    assert [json.loads(x)["identifier"] for x in json_run.stdout.splitlines()] == [GUEST]


def test_send_and_dry_run_exclude_each_other(make_store: Any) -> None:
    app = cli_app(make_store("sqlite"), SERVER_NAME="shop.test", SECRET_KEY="x")
    result = app.test_cli_runner().invoke(args=["cart", "abandoned", "--send", "--dry-run"])
    assert result.exit_code == 2


@pytest.mark.parametrize("kind", ["postgres", "mariadb", "redis"])
def test_two_runs_at_once_send_each_reminder_once(
    make_store: Any, kind: str, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    store = make_store(kind)
    for i in range(40):
        guest(store, f"5f0c7c4e-2a0e-4c1d-9d7e-3f2b8a6c{i:04}", f"g{i}@example.com")
    env_store = (
        {"T_STORE": "redis", "T_PREFIX": store.prefix}
        if isinstance(store, RedisStore)
        else {
            "T_STORE": "sql",
            "T_URL": store.engine.url.render_as_string(hide_password=False),
            "T_TABLE": store.table.name,
        }
    )
    env = {
        **os.environ,
        **env_store,
        "T_MAIL_PORT": str(port),
        "PYTHONPATH": str(Path(__file__).parent.parent),
    }
    flask = str(Path(sys.executable).with_name("flask"))
    app_file = str(Path(__file__).with_name("reminder_app.py"))
    cmd = [flask, "--app", app_file, "cart", "abandoned", "--send", "--json", "--batch-size", "7"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE) for _ in range(2)]
    outs = [p.communicate(timeout=120)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert len(inbox.messages) == 40
    assert len(set(inbox.to())) == 40
    ids = [json.loads(line)["identifier"] for out in outs for line in out.splitlines()]
    assert len(ids) == 40 and len(set(ids)) == 40


def test_a_shop_s_own_reminder_templates_win(
    store: CartStore, smtp: tuple[Inbox, int], tmp_path: Path
) -> None:
    inbox, port = smtp
    (tmp_path / "flask_cart").mkdir()
    (tmp_path / "flask_cart" / "reminder.txt").write_text(
        "Stage {{ stage }}: {{ lines|length }} line(s), {{ total }} {{ currency }}. "
        "{{ unsubscribe_url }}"
    )
    guest(store, GUEST, "ann@example.com")

    def hook(app: Flask) -> None:
        app.template_folder = str(tmp_path)

    result = send(store, port, app_hook=hook)
    assert result.exit_code == 0, (result.output, result.exception)
    (message,) = inbox.messages
    text = message.get_body(("plain",))
    assert text is not None
    assert text.get_content().startswith("Stage 1h: 1 line(s), 19.98 USD. http://shop.test/")
    html = message.get_body(("html",))
    assert html is not None and "Pick up where you left off" in html.get_content()
