"""flask_cart.cookies.set_cookie writes the header werkzeug's response.set_cookie writes."""

from __future__ import annotations

import pytest
from werkzeug.http import parse_date
from werkzeug.wrappers import Response

from flask_cart.cookies import set_cookie


def both(name: str, value: str, **options: object) -> tuple[list[str], list[str]]:
    theirs, ours = Response(), Response()
    theirs.set_cookie(name, value, path="/", httponly=True, **options)  # type: ignore[arg-type]
    set_cookie(ours, name, value, **options)  # type: ignore[arg-type]
    return theirs.headers.getlist("Set-Cookie"), ours.headers.getlist("Set-Cookie")


@pytest.mark.parametrize("secure", [True, False])
@pytest.mark.parametrize("samesite", ["Lax", "strict", "None", None])
@pytest.mark.parametrize("max_age", [30, 30 * 86400])
def test_same_header_as_werkzeug(secure: bool, samesite: str | None, max_age: int) -> None:
    value = "0b8d2a1e-5c3f-4d6e-9f00-123456789abc.Zm9v_bar-Baz"
    theirs, ours = both("guest_cart_id", value, max_age=max_age, secure=secure, samesite=samesite)
    if theirs != ours:  # the clock may tick between the two: only Expires may differ by 1 s
        (t,), (o,) = theirs, ours
        t_exp, o_exp = (parse_date(h.split("Expires=")[1].split(";")[0]) for h in (t, o))
        assert t_exp and o_exp and abs((o_exp - t_exp).total_seconds()) <= 1
        assert t.split("; Max-Age")[1] == o.split("; Max-Age")[1]
    assert len(ours) == 1


@pytest.mark.parametrize("value", ['a"b', "a;b", "é", "a b", ""])
def test_other_values_are_quoted_as_werkzeug_quotes_them(value: str) -> None:
    theirs, ours = both("c", value, max_age=30, secure=False, samesite="Lax")
    strip = [h.split("; Expires")[0] for h in theirs], [h.split("; Expires")[0] for h in ours]
    assert strip[0] == strip[1]


def test_a_bad_samesite_is_refused_as_werkzeug_refuses_it() -> None:
    with pytest.raises(ValueError):
        set_cookie(Response(), "c", "v", max_age=30, secure=False, samesite="sometimes")
