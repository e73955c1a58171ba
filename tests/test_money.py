"""Money rules (ISO 4217 minor units, half-up rounding, minor-unit prices), catalogue text
and line fields made safe, and the plain `Cart`'s snapshot on every store."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from flask_cart import Cart
from flask_cart.catalog import as_product, clean_text, field_value
from flask_cart.money import (
    MINOR_DIGITS,
    check_currency,
    from_minor,
    minor_digits,
    quantum,
    round_money,
)


@pytest.mark.parametrize(
    ("currency", "digits"),
    [("USD", 2), ("EUR", 2), ("JPY", 0), ("KRW", 0), ("KWD", 3), ("BHD", 3), ("CLF", 4)],
)
def test_minor_digits_follow_iso_4217(currency, digits):
    assert minor_digits(currency) == digits


def test_only_currencies_whose_exponent_is_not_two_are_in_the_table():
    assert all(len(code) == 3 and code.isupper() for code in MINOR_DIGITS)
    assert 2 not in MINOR_DIGITS.values()


def test_currency_codes_are_three_ascii_letters_in_upper_case():
    assert check_currency("usd") == "USD"
    for bad in ("US", "USDX", "U$D", "ÜSD", "", 840, None):
        with pytest.raises(ValueError, match="CART_CURRENCY"):
            check_currency(bad)


@pytest.mark.parametrize(
    ("amount", "digits", "rounded"),
    [
        ("0.125", 2, "0.13"),
        ("0.124999", 2, "0.12"),
        ("2.5", 0, "3"),
        ("1.0005", 3, "1.001"),
        ("12", 2, "12.00"),
        ("0", 2, "0.00"),
    ],
)
def test_money_rounds_half_up_to_the_minor_unit(amount, digits, rounded):
    assert str(round_money(Decimal(amount), quantum(digits))) == rounded


def test_minor_units_are_whole_non_negative_ints():
    assert from_minor(7999, 2) == Decimal("79.99") and str(from_minor(7999, 2)) == "79.99"
    assert str(from_minor(7999, 0)) == "7999" and str(from_minor(7999, 3)) == "7.999"
    for bad in (True, 79.99, -1, "7999", Decimal(7999), None):
        with pytest.raises(TypeError):
            from_minor(bad, 2)


def test_the_catalogue_makes_text_valid_unicode():
    assert clean_text("Mug \ud800") == "Mug ?"
    assert clean_text("Tasse à café") == "Tasse à café"
    product = as_product("x", {"unit_cost": "1", "name": "\udfffA"})
    assert product is not None and product.name == "?A"
    product.name.encode("utf-8")  # encodable


def test_an_unusable_line_field_is_none_and_logged_once(caplog):
    class Opaque:
        pass

    with caplog.at_level(logging.WARNING, logger="flask_cart"):
        assert field_value("p1", "test_logged_once", Opaque()) is None
        assert field_value("p2", "test_logged_once", Opaque()) is None
    assert caplog.text.count("test_logged_once") == 1
    assert field_value("p", "f", "/a\ud800.png") == "/a?.png"
    assert field_value("p", "f", Decimal("1.50")) == "1.50"
    assert field_value("p", "f", float("nan")) is None


def test_a_product_priced_in_minor_units_as_the_catalogue_reads_it():
    product = as_product("x", {"unit_cost_minor": 1500}, minor_digits=0)
    assert product is not None and product.unit_cost == Decimal(1500)
    with pytest.raises(TypeError, match="unit_cost_minor"):
        as_product("x", {"unit_cost_minor": 15.0})


# -- the plain Cart, on every store ----------------------------------------------------------


def test_the_plain_cart_keeps_exact_decimal_strings(store):
    cart = Cart("plain", store)
    cart.add("a", "12", 2)
    cart.add("b", Decimal("0.105"), 3)
    body = cart.as_json()
    lines = {i["product_id"]: (i["unit_cost"], i["line_total"]) for i in body["items"]}
    assert lines == {"a": ("12", "24"), "b": ("0.105", "0.315")}
    assert body["total_cost"] == "24.315" and cart.total_cost() == Decimal("24.315")


def test_a_plain_snapshot_leaves_out_a_line_flagged_unavailable(store):
    cart = Cart("plain", store)
    cart.add("a", "2.50", 2)
    cart.add("b", "4.00", 1, available=False)  # flagged: left out of the total
    assert cart.total_cost() == Decimal("5.00")
    order = cart.checkout()
    assert list(order["items"]) == ["a"]
    assert order["items"]["a"]["line_total"] == Decimal("5.00")
    assert (
        order["total_cost"]
        == Decimal("5.00")
        == sum(d["line_total"] for d in order["items"].values())
    )
    assert order["count"] == 1 and order["quantity"] == 2
    assert not store.load(cart.key).exists


def test_a_plain_checkout_with_a_session_its_store_cannot_join_raises_type_error(store):
    cart = Cart("plain", store)
    cart.add("a", "1", 1)
    with (
        Session(sa.create_engine("sqlite://")) as session,
        pytest.raises(TypeError, match=r"checkout\(session=\.\.\.\)"),
    ):
        cart.checkout(session=session)
    assert store.load(cart.key).lines["a"].quantity == 1
