"""Bad input through the Python API raises the documented error and writes nothing."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from flask_cart import Cart, CartError
from flask_cart.errors import (
    InvalidDetails,
    InvalidInput,
    InvalidPrice,
    InvalidProductId,
    InvalidQuantity,
    LineNotFound,
    QuantityLimitExceeded,
)
from flask_cart.lines import MAX_LINE_QUANTITY_CAP, MAX_LINES_CAP, Limits, check_details
from tests.helpers import raw_dump

BAD_QUANTITIES = [
    (True, InvalidQuantity),
    (False, InvalidQuantity),
    (2.5, InvalidQuantity),
    (2.0, InvalidQuantity),
    ("3", InvalidQuantity),
    (None, InvalidQuantity),
    (math.nan, InvalidQuantity),
    (math.inf, InvalidQuantity),
    (Decimal(2), InvalidQuantity),
    (-1, InvalidQuantity),
    (0, InvalidQuantity),
    (1000, QuantityLimitExceeded),
    (2**63, QuantityLimitExceeded),
    (-(2**63), InvalidQuantity),
]
BAD_PRODUCT_IDS = ["", 5, None, b"sku", "x" * 129, "a\nb", "tab\there", ["sku"]]
BAD_PRICES = [
    0.5,
    9.99,
    True,
    None,
    "abc",
    "",
    "-1",
    "NaN",
    "Infinity",
    "1e400",
    Decimal("NaN"),
    Decimal("-0.01"),
    Decimal("1e-9"),
    "10000000000000",
    [],
    {"amount": 1},
]
BAD_DETAILS = [
    {"blob": object()},
    {"nan": math.nan},
    {"big": "x" * 5000},
]


@pytest.fixture
def cart(store):
    cart = Cart("u1", store)
    cart.add("sku-1", "9.99", 2, name="Mug")
    return cart


def test_errors_share_one_base_with_codes_and_statuses():
    for error in (InvalidQuantity, InvalidPrice, LineNotFound, QuantityLimitExceeded):
        assert issubclass(error, CartError)
        assert error.code and error.status in (400, 404, 422)


@pytest.mark.parametrize(("quantity", "error"), BAD_QUANTITIES, ids=repr)
def test_bad_quantities_are_refused(store, cart, quantity, error):
    before = raw_dump(store, cart.key)
    with pytest.raises(error):
        cart.add("sku-1", "9.99", quantity)
    with pytest.raises(error):
        cart.add("sku-new", "9.99", quantity)
    if quantity != 0:
        with pytest.raises(error):
            cart.update("sku-1", quantity)
    assert raw_dump(store, cart.key) == before


@pytest.mark.parametrize("product_id", BAD_PRODUCT_IDS, ids=repr)
def test_bad_product_ids_are_refused(store, cart, product_id):
    before = raw_dump(store, cart.key)
    with pytest.raises(InvalidProductId):
        cart.add(product_id, "1.00")
    with pytest.raises(InvalidProductId):
        cart.update(product_id, 1)
    with pytest.raises(InvalidProductId):
        cart.remove(product_id)
    assert raw_dump(store, cart.key) == before


@pytest.mark.parametrize("price", BAD_PRICES, ids=repr)
def test_bad_prices_are_refused(store, cart, price):
    before = raw_dump(store, cart.key)
    with pytest.raises(InvalidPrice):
        cart.add("sku-1", price)
    assert raw_dump(store, cart.key) == before


@pytest.mark.parametrize(
    ("price", "stored"),
    [("-0", "0"), ("-0.00", "0.00"), (" -0.0 ", "0.0"), (Decimal("-0"), "0"), ("-0E+2", "0")],
    ids=repr,
)
def test_negative_zero_prices_are_stored_as_zero(store, price, stored):
    cart = Cart("u1", store)
    cart.add("free", price)
    assert store.load(cart.key).lines["free"].unit_cost == stored
    assert str(cart.get_product("free")["unit_cost"]) == stored
    assert str(cart.total_cost()) in ("0", "0.00", "0.0")


@pytest.mark.parametrize("details", BAD_DETAILS, ids=lambda d: next(iter(d)))
def test_bad_details_are_refused(store, cart, details):
    before = raw_dump(store, cart.key)
    with pytest.raises(InvalidDetails):
        cart.add("sku-1", "9.99", 1, **details)
    assert raw_dump(store, cart.key) == before


@pytest.mark.parametrize("identifier", ["", None, True, 2.5, "x" * 201, "a\nb"], ids=repr)
def test_bad_identifiers_and_ttls_are_refused(store, identifier):
    with pytest.raises(InvalidInput):
        Cart(identifier, store)
    for ttl in (0, -5, 1.5, "60", True):
        with pytest.raises(InvalidInput):
            Cart("u1", store, ttl=ttl)


def test_details_may_not_shadow_line_fields():
    for name in ("quantity", "unit_cost", "product_id"):
        with pytest.raises(InvalidDetails, match=name):
            check_details({name: 1})


def test_bad_merge_strategy_is_refused(store, cart):
    guest = Cart("g1", store)
    guest.add("sku-2", 1)
    before = raw_dump(store, cart.key), raw_dump(store, guest.key)
    with pytest.raises(ValueError, match="strategy"):
        cart.merge(guest, "newest")
    assert (raw_dump(store, cart.key), raw_dump(store, guest.key)) == before


def test_identifiers_with_odd_characters_stay_apart(store):
    odd = ["a{b}", "a:b", "a%3Ab", "ä ü", "user 1", "{}"]
    for n, identifier in enumerate(odd):
        Cart(identifier, store).add("sku", 1, n + 1)
    assert [Cart(i, store).quantity() for i in odd] == list(range(1, len(odd) + 1))


def test_integer_identifiers_work_like_ecart(store):
    Cart(42, store).add("sku", 1, 2)
    assert Cart("42", store).quantity() == 2


@pytest.mark.parametrize(
    "caps",
    [
        {"max_line_quantity": 1_000_000_001},
        {"max_line_quantity": 10**14},
        {"max_lines": 10_001},
        {"max_line_quantity": 0},
        {"max_lines": True},
    ],
)
def test_limits_are_bounded(caps):
    with pytest.raises(ValueError):
        Limits(**caps)


def test_limits_at_their_bounds_are_accepted():
    limits = Limits(max_line_quantity=MAX_LINE_QUANTITY_CAP, max_lines=MAX_LINES_CAP)
    assert (limits.max_line_quantity, limits.max_lines) == (1_000_000_000, 10_000)


def test_every_error_is_importable_flat_from_flask_cart():
    import flask_cart
    from flask_cart import errors

    classes = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, errors.CartError)
    ]
    assert len(classes) > 15
    for cls in classes:
        assert getattr(flask_cart, cls.__name__) is cls
        assert cls.__name__ in flask_cart.__all__
