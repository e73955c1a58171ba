"""The demo's outbox: reminders "sent" through Flask-Mail land in a folder, not in a mailbox.

Flask-Mail runs with MAIL_SUPPRESS_SEND (no SMTP server is needed) and still sends its
``email_dispatched`` signal; the receiver writes each message, headers and text, as one
JSON file in DEMO_OUTBOX (``instance/outbox`` by default), which the QA page lists.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from datetime import datetime, timezone
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from flask import Flask, current_app

#: The QA page shows at most this many messages, newest first.
SHOWN = 50
LINK = re.compile(r"https?://[^\s<>\"']+")


def folder(app: Flask | None = None) -> Path:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    return Path(app.config.get("DEMO_OUTBOX") or os.path.join(app.instance_path, "outbox"))


def connect(app: Flask) -> None:
    """Keep each message Flask-Mail dispatches for `app` in its outbox folder."""
    from flask_mail import email_dispatched

    email_dispatched.connect(keep, app, weak=False)


def keep(sender: Flask, message: Any, **_: Any) -> None:
    """Write one dispatched message as JSON: its headers, text, HTML and links."""
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    text = message.body or ""
    record = {
        "kept_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "headers": [[name, str(value)] for name, value in parsed.items()],
        "subject": message.subject,
        "to": list(message.recipients),
        "text": text,
        "html": message.html or "",
        "links": list(dict.fromkeys(LINK.findall(text))),
    }
    where = folder(sender)
    where.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    path = where / f"{stamp}-{uuid.uuid4().hex[:8]}.json"
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(record, indent=1))
    temporary.replace(path)


def messages(limit: int = SHOWN) -> list[dict[str, Any]]:
    """The newest `limit` messages of the outbox (none when it does not exist yet)."""
    where = folder()
    if not where.is_dir():
        return []
    found = []
    for path in sorted(where.glob("*.json"), reverse=True)[:limit]:
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        record["id"] = path.stem
        found.append(record)
    return found
