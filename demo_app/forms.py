"""Log-in and registration forms (Flask-WTF: CSRF token included)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import EqualTo, InputRequired, Length, Optional, Regexp

EMAIL = Regexp(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", message="Enter an e-mail address.")


class LoginForm(FlaskForm):
    email = EmailField("E-mail", validators=[InputRequired(), EMAIL, Length(max=200)])
    password = PasswordField("Password", validators=[InputRequired(), Length(max=200)])
    remember = BooleanField("Keep me logged in on this device")


class RegisterForm(FlaskForm):
    name = StringField("Name", validators=[InputRequired(), Length(min=1, max=100)])
    email = EmailField("E-mail", validators=[InputRequired(), EMAIL, Length(max=200)])
    password = PasswordField(
        "Password",
        validators=[InputRequired(), Length(min=8, max=200, message="At least 8 characters.")],
    )
    confirm = PasswordField(
        "Repeat the password",
        validators=[InputRequired(), EqualTo("password", message="The passwords differ.")],
    )


class CheckoutForm(FlaskForm):
    """ "Place order": the token of the cart the customer reviewed (``current_cart.token``)
    and, for a guest, the e-mail address the order is placed with."""

    cart_token = HiddenField(validators=[InputRequired(), Length(max=200)])
    # What the review showed ("product:quantity:price ..."), only to say what changed.
    reviewed = HiddenField(validators=[Optional(), Length(max=20_000)])
    email = EmailField(
        "E-mail for the order confirmation",
        validators=[Optional(), EMAIL, Length(max=200)],
        filters=[lambda value: value.strip() if isinstance(value, str) else value],
    )
