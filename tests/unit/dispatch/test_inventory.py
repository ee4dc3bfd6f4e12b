"""Stock ledger rules: each movement's effect, refusals, and the never-negative invariant."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.errors import InsufficientStock, ValidationError
from missions.inventory import Balance, Ledger, Movement, MovementKind, SkuSpec, balances

K = MovementKind


def mv(kind: MovementKind, q: int, req: str | None = None, mission: str | None = None) -> Movement:
    return Movement(kind, "wh-1", "masks", q, request_id=req, mission_id=mission)


def test_a_box_travels_from_receipt_to_delivery() -> None:
    ledger = Ledger.replay(
        [
            mv(K.RECEIVE, 100),
            mv(K.RESERVE, 30, "r1"),
            mv(K.LOAD, 20, "r1", "m1"),
            mv(K.DELIVER, 15, "r1", "m1"),
            mv(K.RETURN, 5, "r1", "m1"),
        ]
    )
    b = ledger.balance("wh-1", "masks")
    assert b == Balance(on_hand=85, reserved=10, in_transit=0, delivered=15)
    assert b.available == 75
    assert ledger.reserved_for("wh-1", "masks", "r1") == 10
    assert ledger.in_transit("wh-1", "masks", "r1", "m1") == 0
    assert ledger.count == 5


def test_release_gives_a_reservation_back() -> None:
    ledger = Ledger.replay([mv(K.RECEIVE, 10), mv(K.RESERVE, 10, "r1"), mv(K.RELEASE, 4, "r1")])
    assert ledger.balance("wh-1", "masks").available == 4


@pytest.mark.parametrize(
    ("history", "bad", "words"),
    [
        ([mv(K.RECEIVE, 5)], mv(K.RESERVE, 6, "r1"), "only 5 available"),
        ([mv(K.RECEIVE, 5), mv(K.RESERVE, 5, "r1")], mv(K.RESERVE, 1, "r2"), "only 0"),
        ([mv(K.RECEIVE, 5), mv(K.RESERVE, 2, "r1")], mv(K.RELEASE, 3, "r1"), "holds 2"),
        ([mv(K.RECEIVE, 5), mv(K.RESERVE, 2, "r1")], mv(K.LOAD, 2, "r2", "m"), "holds 0"),
        ([mv(K.RECEIVE, 5), mv(K.RESERVE, 2, "r1")], mv(K.LOAD, 3, "r1", "m"), "holds 2"),
        (
            [mv(K.RECEIVE, 5), mv(K.RESERVE, 2, "r1"), mv(K.LOAD, 2, "r1", "m")],
            mv(K.DELIVER, 1, "r1", "other"),
            "carries 0",
        ),
        (
            [mv(K.RECEIVE, 5), mv(K.RESERVE, 2, "r1"), mv(K.LOAD, 2, "r1", "m")],
            mv(K.RETURN, 3, "r1", "m"),
            "carries 2",
        ),
        ([mv(K.RECEIVE, 5), mv(K.RESERVE, 4, "r1")], mv(K.ADJUST, -2), "below the 4 reserved"),
    ],
)
def test_refused_movements_change_nothing(
    history: list[Movement], bad: Movement, words: str
) -> None:
    ledger = Ledger.replay(history)
    before = ledger.copy()
    with pytest.raises(InsufficientStock) as e:
        ledger.apply(bad)
    assert words in str(e.value)
    assert e.value.fields["sku_id"] == "masks"
    assert ledger.balances() == before.balances()
    assert ledger.count == before.count


@pytest.mark.parametrize(
    "bad",
    [
        mv(K.RECEIVE, 0),
        mv(K.RECEIVE, -3),
        mv(K.RESERVE, 1),  # no request
        mv(K.LOAD, 1, "r1"),  # no mission
        mv(K.ADJUST, 0),
        Movement(K.RECEIVE, "wh-1", "masks", 1.5),  # type: ignore[arg-type]
    ],
)
def test_malformed_movements_are_validation_errors(bad: Movement) -> None:
    with pytest.raises(ValidationError):
        Ledger().apply(bad)


def test_adjust_corrects_stock_both_ways() -> None:
    b = balances([mv(K.RECEIVE, 10), mv(K.ADJUST, -3), mv(K.ADJUST, 1)])
    assert b[("wh-1", "masks")].on_hand == 8


def test_sku_packing() -> None:
    masks = SkuSpec("masks", units_per_box=50, box_kg=2.0, unit_kg=0.03)
    assert masks.boxes(0) == 0
    assert masks.boxes(50) == 1
    assert masks.boxes(51) == 2
    assert masks.kg(120) == pytest.approx(2 * 2.0 + 20 * 0.03)
    with pytest.raises(ValidationError):
        SkuSpec("x", units_per_box=0, box_kg=1, unit_kg=1)


operations = st.lists(
    st.tuples(
        st.sampled_from(list(MovementKind)),
        st.integers(-20, 40),
        st.sampled_from(["r1", "r2", "r3"]),
        st.sampled_from(["m1", "m2"]),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(operations)
def test_stock_never_goes_negative(ops: list[tuple[MovementKind, int, str, str]]) -> None:
    ledger = Ledger()
    accepted: list[Movement] = []
    for kind, q, req, mission in ops:
        m = Movement(kind, "wh", "sku", q, request_id=req, mission_id=mission)
        try:
            ledger.apply(m)
        except (InsufficientStock, ValidationError):
            continue
        accepted.append(m)
        b = ledger.balance("wh", "sku")
        assert 0 <= b.reserved <= b.on_hand
        assert b.in_transit >= 0 and b.delivered >= 0
    # the ledger is its own audit: replaying what was accepted gives the same balances
    assert Ledger.replay(accepted).balances() == ledger.balances()
    # conservation: what came in is on hand, on the road, or delivered
    b = ledger.balance("wh", "sku")
    received = sum(m.quantity for m in accepted if m.kind in (K.RECEIVE, K.ADJUST))
    assert received == b.on_hand + b.in_transit + b.delivered
