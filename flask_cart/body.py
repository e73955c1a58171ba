"""Reading a change's body: JSON or form fields, at most 16 KB, chunked or not.

The body is read once, by a bounded read of its stream (a chunked body has no length to
check up front), and parsed from those bytes; the parsed form is kept in the WSGI environ
so that answers and error handlers never read the stream again. Works on every Flask the
package supports (a per-request ``max_content_length`` needs Flask 3.1).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from typing import IO, Any

from flask import Request, request
from werkzeug.exceptions import HTTPException
from werkzeug.formparser import FormDataParser

from .errors import InvalidQuantity, MalformedBody

MAX_BODY_BYTES = 16 * 1024
MAX_FORM_PARTS = 100
JSON_INT_LIMIT = 2**31 - 1
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
FORM_KEY = "flask_cart.form"
_READ_SIZE = 64 * 1024
_DIGITS = re.compile(r"[0-9]{1,10}")


def too_large() -> MalformedBody:
    return MalformedBody(f"the body is larger than {MAX_BODY_BYTES} bytes")


def read_body() -> dict[str, Any]:
    """The request body as a dict: a JSON object or form fields; {} when there is none.

    A body over MAX_BODY_BYTES is refused (400 ``malformed_body``) before it is parsed.
    """
    req = request._get_current_object()  # type: ignore[attr-defined]
    length = req.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise too_large()
    mimetype = req.mimetype
    if mimetype in FORM_TYPES:
        return _form_body()
    raw = _raw_body(req)
    if not raw.strip():
        return {}
    if not (mimetype == "application/json" or req.is_json):
        raise MalformedBody("send JSON (Content-Type: application/json) or a form")
    try:
        data = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise MalformedBody("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise MalformedBody("the body must be a JSON object")
    return data


def form_fields() -> dict[str, Any] | None:
    """The fields of the form `read_body` read in this request; None when it read no form."""
    fields: dict[str, Any] | None = request.environ.get(FORM_KEY)
    return fields


def _form_body() -> dict[str, Any]:
    if "form" in request.__dict__:  # the app parsed it already (say, Flask-WTF's CSRFProtect)
        form: Mapping[str, str] = request.form
        if sum(len(k) + len(v) for k, v in request.form.items(multi=True)) > MAX_BODY_BYTES:
            raise too_large()
    else:
        raw = _raw_body(request._get_current_object())  # type: ignore[attr-defined]
        request.environ[FORM_KEY] = {}  # a form: its errors are flashed, even if it is garbled
        form = _parse_form(raw)
    fields = {key: form.get(key) for key in form}
    request.environ[FORM_KEY] = fields
    return fields


def _parse_form(raw: bytes) -> Mapping[str, str]:
    parser = FormDataParser(
        max_form_memory_size=MAX_BODY_BYTES,
        max_content_length=MAX_BODY_BYTES,
        max_form_parts=MAX_FORM_PARTS,
        silent=False,
    )
    try:
        _, form, _ = parser.parse(
            io.BytesIO(raw), request.mimetype, len(raw), request.mimetype_params
        )
    except (HTTPException, ValueError):
        raise MalformedBody("the form body could not be read") from None
    return form


def _raw_body(request: Request) -> bytes:
    """The body's bytes, read at most once and never more than MAX_BODY_BYTES of them."""
    cached: bytes | None = getattr(request, "_cached_data", None)  # read by the app already
    if cached is None:
        try:
            cached = _read_at_most(request.stream, MAX_BODY_BYTES + 1)
        except HTTPException:
            raise MalformedBody("the body could not be read") from None
        # what get_data() and request.form read from now
        request._cached_data = cached
    if len(cached) > MAX_BODY_BYTES:
        raise too_large()
    return cached


def _read_at_most(stream: IO[bytes], limit: int) -> bytes:
    """Up to `limit` bytes of `stream` (a raw or chunked stream may answer short reads)."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = stream.read(min(_READ_SIZE, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def quantity(data: dict[str, Any], default: int | None = None) -> Any:
    """The body's quantity: a JSON integer (or a form's digits); range checked by the cart."""
    if "quantity" not in data:
        if default is None:
            raise InvalidQuantity("quantity is required")
        return default
    value = data["quantity"]
    if form_fields() is not None and isinstance(value, str):
        if not _DIGITS.fullmatch(value.strip()):
            raise InvalidQuantity("quantity must be a whole number")
        value = int(value)
    if type(value) is not int:
        raise InvalidQuantity(f"quantity must be an integer, got {_json_type(value)}")
    if not -JSON_INT_LIMIT <= value <= JSON_INT_LIMIT:
        raise InvalidQuantity("quantity is out of range")
    return value


def _json_type(value: Any) -> str:
    names = {bool: "boolean", float: "number", str: "string", list: "array", dict: "object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
