"""Following a cart or recovery link as a person does: open it, then press the button of
its confirmation page (which posts the page's signed single-use token)."""

from __future__ import annotations

import html
import re
from typing import Any

NAVIGATE = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Sec-Fetch-Site": "none"}
CLICKED = dict(NAVIGATE, **{"Sec-Fetch-User": "?1"})
_FORM = re.compile(r'<form method="post" action="([^"]*)">(.*?)</form>', re.S)
_FIELD = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def confirmation_form(page: Any) -> tuple[str, dict[str, str]] | None:
    """The action and hidden fields of a confirmation page's form, or None (the page answers
    200, or 403 to a post without its token)."""
    if page.status_code not in (200, 403) or page.mimetype != "text/html":
        return None
    match = _FORM.search(page.get_data(as_text=True))
    if match is None:
        return None
    fields = {name: html.unescape(value) for name, value in _FIELD.findall(match[2])}
    return html.unescape(match[1]), fields


def press_button(client: Any, page: Any, **headers: str) -> Any:
    """POST the confirmation page's form, as its button does."""
    form = confirmation_form(page)
    assert form is not None, page.get_data(as_text=True)
    action, fields = form
    return client.post(action, data=fields, headers=headers)


def open_and_confirm(client: Any, path: str, **headers: str) -> Any:
    """Open `path` as a click does (or with `headers`); press the button of a confirmation
    page if one comes; the last answer."""
    page = client.get(path, headers=headers or CLICKED)
    if confirmation_form(page) is None:
        return page
    return press_button(client, page)
