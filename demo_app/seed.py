"""The demo catalogue and demo customers, created on first start."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa

from .models import Product, User, db

# (sku, name, price, stock, description)
CATALOGUE: list[tuple[str, str, str, int, str]] = [
    ("enamel-mug", "Enamel mug", "12.50", 40, "A speckled camping mug that survives drops."),
    ("pour-over", "Pour-over dripper", "24.00", 15, "Ceramic dripper, size 02."),
    ("coffee-beans", "House coffee beans", "16.90", 60, "Medium roast, 500 g."),
    ("green-tea", "Sencha green tea", "9.75", 30, "Loose leaf, 100 g tin."),
    ("notebook", "Dotted notebook", "14.00", 25, "A5, 192 pages, lies flat."),
    ("fountain-pen", "Fountain pen", "38.00", 8, "Steel nib, fine."),
    ("tote-bag", "Canvas tote bag", "18.00", 20, "Heavy cotton canvas."),
    ("desk-lamp", "Desk lamp", "59.00", 5, "Warm LED, dimmable."),
    ("plant-pot", "Terracotta plant pot", "11.20", 35, "14 cm, with saucer."),
    ("wool-socks", "Wool socks", "13.40", 3, "Merino blend, one pair."),
    ("jigsaw", "1000-piece jigsaw", "21.99", 12, "A lighthouse at dusk."),
    ("vinyl-record", "Vinyl record", "27.50", 0, "Limited pressing: sold out for now."),
]

# (email, password, name): printed at start-up and shown on the log-in page.
DEMO_USERS: list[tuple[str, str, str]] = [
    ("alice@example.com", "alice-demo", "Alice"),
    ("bob@example.com", "bob-demo", "Bob"),
]


def seed() -> list[str]:
    """Create the catalogue and demo users where missing; what was created (SKUs, e-mails)."""
    created: list[str] = []
    for sku, name, price, stock, description in CATALOGUE:
        if db.session.get(Product, sku) is None:
            db.session.add(
                Product(
                    id=sku,
                    name=name,
                    price=Decimal(price),
                    stock=stock,
                    description=description,
                )
            )
            created.append(sku)
    for email, password, name in DEMO_USERS:
        if db.session.scalar(sa.select(User).filter_by(email=email)) is None:
            user = User(email=email, name=name)
            user.set_password(password)
            db.session.add(user)
            created.append(email)
    db.session.commit()
    return created
