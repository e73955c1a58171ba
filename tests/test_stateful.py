"""A Hypothesis state machine drives a store-backed Cart and a plain dict side by side."""

from __future__ import annotations

import uuid
from decimal import Decimal

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from flask_cart import Cart
from flask_cart.errors import (
    InvalidQuantity,
    LineLimitExceeded,
    LineNotFound,
    QuantityLimitExceeded,
)
from flask_cart.lines import Limits

LIMITS = Limits(max_line_quantity=12, max_lines=4)
PRODUCTS = st.sampled_from(["a", "b", "c", "d", "e", "f"])
PRICES = st.decimals(min_value=0, max_value=1000, places=2, allow_nan=False)
QUANTITIES = st.one_of(st.integers(-2, 14), st.sampled_from([2**63, True, 1.5, "2"]))


class CartModel(RuleBasedStateMachine):
    """The model is {product: [quantity, unit_cost]} in insertion order."""

    store = None

    def __init__(self) -> None:
        super().__init__()
        self.cart = Cart(uuid.uuid4().hex, self.store, limits=LIMITS)
        self.other = Cart(uuid.uuid4().hex, self.store, limits=LIMITS)
        self.model: dict[str, list] = {}
        self.other_model: dict[str, int] = {}

    @rule(product=PRODUCTS, price=PRICES, quantity=QUANTITIES)
    def add(self, product, price, quantity):
        expected = _expected_add(self.model, product, quantity)
        try:
            self.cart.add(product, price, quantity)
        except (InvalidQuantity, QuantityLimitExceeded, LineLimitExceeded) as exc:
            assert type(exc) is expected, (exc, expected)
            return
        assert expected is None
        line = self.model.setdefault(product, [0, price])
        line[0] += quantity
        line[1] = price

    @rule(product=PRODUCTS, quantity=QUANTITIES)
    def update(self, product, quantity):
        if type(quantity) is not int or quantity < 0:
            expected: type | None = InvalidQuantity
        elif quantity > LIMITS.max_line_quantity:
            expected = QuantityLimitExceeded
        elif product not in self.model:
            expected = LineNotFound
        else:
            expected = None
        try:
            self.cart.update(product, quantity)
        except (InvalidQuantity, QuantityLimitExceeded, LineNotFound) as exc:
            assert type(exc) is expected, (exc, expected)
            return
        assert expected is None
        if quantity == 0:
            del self.model[product]
        else:
            self.model[product][0] = quantity

    @rule(product=PRODUCTS)
    def remove(self, product):
        assert self.cart.remove(product) == (product in self.model)
        self.model.pop(product, None)

    @rule()
    def clear(self):
        self.cart.clear()
        self.model.clear()

    @rule(product=PRODUCTS, quantity=st.integers(1, 12))
    def add_to_other(self, product, quantity):
        if _expected_add({p: [q, 0] for p, q in self.other_model.items()}, product, quantity):
            return
        self.other.add(product, 1, quantity)
        self.other_model[product] = self.other_model.get(product, 0) + quantity

    @rule()
    def merge_other(self):
        self.cart.merge(self.other, "sum")
        for product, quantity in self.other_model.items():
            if product in self.model:
                self.model[product][0] = min(self.model[product][0] + quantity, 12)
            elif len(self.model) < LIMITS.max_lines:
                self.model[product] = [quantity, Decimal(1)]
        self.other_model.clear()

    @rule()
    def checkout(self):
        snapshot = self.cart.checkout()
        assert {p: d["quantity"] for p, d in snapshot["items"].items()} == {
            p: q for p, (q, _) in self.model.items()
        }
        self.model.clear()

    @invariant()
    def matches_the_model(self):
        got = self.cart.get()
        assert list(got) == list(self.model)
        for product, (quantity, price) in self.model.items():
            assert got[product]["quantity"] == quantity
            assert got[product]["unit_cost"] == price
        assert self.cart.total_cost() == sum((q * p for q, p in self.model.values()), Decimal(0))

    def teardown(self):
        self.cart.destroy()
        self.other.destroy()


def _expected_add(model, product, quantity):
    if type(quantity) is not int or quantity < 1:
        return InvalidQuantity
    if quantity > LIMITS.max_line_quantity:
        return QuantityLimitExceeded
    if product in model:
        return QuantityLimitExceeded if model[product][0] + quantity > 12 else None
    return LineLimitExceeded if len(model) >= LIMITS.max_lines else None


def test_cart_behaves_like_the_model(store):
    machine = type("Machine", (CartModel,), {"store": store})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=40,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
