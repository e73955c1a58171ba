"""Money in a currency's minor unit: ISO 4217 exponents, rounding, minor-unit prices.

The table holds the ISO 4217 currencies whose minor unit is not 1/100 (JPY 0 digits,
KWD 3, ...); every other three-letter code has 2. A line total is unit cost x quantity
rounded half-up to the minor unit; a cart total is the sum of its rounded line totals.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

#: ISO 4217 currencies whose exponent (digits after the decimal point) is not 2.
MINOR_DIGITS: dict[str, int] = {
    **dict.fromkeys(
        (
            "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF",
            "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF",
        ),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}  # fmt: skip
DEFAULT_MINOR_DIGITS = 2


def check_currency(value: object) -> str:
    """CART_CURRENCY: three ASCII letters, answered in upper case ("usd" -> "USD")."""
    if not isinstance(value, str) or len(value) != 3 or not value.isascii() or not value.isalpha():
        raise ValueError(f'CART_CURRENCY must be three letters ("USD", "EUR"), got {value!r}')
    return value.upper()


def minor_digits(currency: str) -> int:
    """Digits of the currency's minor unit (USD 2, JPY 0, KWD 3)."""
    return MINOR_DIGITS.get(currency.upper(), DEFAULT_MINOR_DIGITS)


def quantum(digits: int) -> Decimal:
    """The minor unit as a Decimal exponent: 2 -> Decimal("0.01"), 0 -> Decimal("1")."""
    return Decimal(1).scaleb(-digits)


def round_money(amount: Decimal, unit: Decimal) -> Decimal:
    """`amount` rounded half-up to the minor `unit` (a `quantum`)."""
    return amount.quantize(unit, ROUND_HALF_UP)


def from_minor(value: object, digits: int) -> Decimal:
    """An amount in minor units (an int >= 0, as 7999 cents) as a Decimal ("79.99");
    TypeError for a bool, a float, a negative number or anything else."""
    if type(value) is not int or value < 0:
        raise TypeError(f"unit_cost_minor must be an int >= 0 (minor units), got {value!r}")
    return Decimal(value).scaleb(-digits)
