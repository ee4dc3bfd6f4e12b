"""The default SKU catalogue of a street warehouse in lockdown.

Seeded when the SKU table is empty so a new deployment (and ``make demo``) has the items the
reference deployment moved: masks, protective suits, alcohol, face shields, gloves, food boxes,
medicine and test kits. Operators add or change SKUs through the API. Figures are typical
carton sizes for these goods in China in 2022.
"""

from __future__ import annotations

from fleet.store.tables import Sku

DEFAULT_SKUS: tuple[Sku, ...] = (
    Sku(
        id="mask",
        name="Surgical masks",
        unit="piece",
        units_per_box=500,
        box_kg=2.5,
        box_volume_l=40.0,
        unit_kg=0.005,
    ),
    Sku(
        id="protective_suit",
        name="Protective suits",
        unit="piece",
        units_per_box=20,
        box_kg=9.0,
        box_volume_l=60.0,
        unit_kg=0.45,
    ),
    Sku(
        id="alcohol",
        name="75% alcohol, 500 ml",
        unit="bottle",
        units_per_box=24,
        box_kg=12.5,
        box_volume_l=16.0,
        unit_kg=0.52,
        drone_eligible=False,
    ),
    Sku(
        id="face_shield",
        name="Face shields",
        unit="piece",
        units_per_box=100,
        box_kg=6.0,
        box_volume_l=70.0,
        unit_kg=0.06,
    ),
    Sku(
        id="gloves",
        name="Nitrile gloves",
        unit="pair",
        units_per_box=500,
        box_kg=5.5,
        box_volume_l=30.0,
        unit_kg=0.011,
    ),
    Sku(
        id="food_box",
        name="Food parcel (rice, oil, vegetables)",
        unit="parcel",
        units_per_box=1,
        box_kg=10.0,
        box_volume_l=30.0,
        unit_kg=10.0,
    ),
    Sku(
        id="medicine",
        name="Prescription medicine pack",
        unit="pack",
        units_per_box=50,
        box_kg=5.0,
        box_volume_l=20.0,
        unit_kg=0.1,
    ),
    Sku(
        id="test_kit",
        name="Antigen test kits",
        unit="kit",
        units_per_box=100,
        box_kg=4.0,
        box_volume_l=25.0,
        unit_kg=0.04,
    ),
)
"""Seeded SKUs."""


def default_skus() -> list[Sku]:
    """Fresh copies of the default SKUs (table rows must not be shared between sessions)."""
    return [Sku.model_validate(s.model_dump()) for s in DEFAULT_SKUS]
