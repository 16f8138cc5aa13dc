"""A demo configuration for every model: what ``--model CODE`` meters.

``synth``, ``run --simulate`` and ``registers`` take ``--model CODE`` for a
meter nobody has configured yet, and ``models CODE --format config`` prints
the same configuration as a starting point for ``--config FILE`` (more
examples in ``docs/examples/``).  Plain data from the model catalogue:
light, for ``models`` runs from the client-only install too.
"""

from __future__ import annotations

from typing import Any, Final

from s8000_engine.models import MeterModel

#: The model of ``run --simulate``, ``synth`` and ``registers`` when none is named.
DEFAULT_MODEL: Final = "S8UTS-083"

#: The demo panel's first circuits and their CT ratings (A).  The simulated
#: panel (:mod:`s8000_engine.local.simulate`) gives points 1 to 8 these
#: loads, in this order; further points are general circuits.
CIRCUITS: Final = (
    ("Lighting", 50),
    ("HVAC", 100),
    ("EV charger", 100),
    ("Solar", 100),
    ("Kitchen", 50),
    ("Refrigeration", 50),
    ("Laundry", 50),
    ("Office", 50),
)
OTHER_CIRCUIT_CT_A: Final = 20

_WYE_PHASES: Final = ("A", "B", "C")


def _service_and_phases(model: MeterModel) -> tuple[str, list[list[str]]]:
    """The demo's service and each point's CT phases, as an electrician would wire them."""
    if model.elements == 3:  # three-phase loads on a 120/208 or 277/480 V wye
        return "3p4w", [list(_WYE_PHASES) for _ in range(model.points)]
    if model.elements == 2 and model.voltage == 120:  # two-pole loads on 120/240 V split phase
        return "1p3w", [["A", "B"] for _ in range(model.points)]
    # Two-pole loads (277 V variants) or single-pole circuits across the three
    # phases of a wye, in turn as a panel's breakers alternate.
    rows = [
        [_WYE_PHASES[(point + element) % 3] for element in range(model.elements)]
        for point in range(model.points)
    ]
    return "3p4w", rows


def demo_config(model: MeterModel) -> dict[str, Any]:
    """A configuration of ``model`` with every point in use (JSON-ready data)."""
    service, phases = _service_and_phases(model)
    points = []
    for index, point_phases in enumerate(phases):
        name, ct = (
            CIRCUITS[index]
            if index < len(CIRCUITS)
            else (f"Circuit {index + 1}", OTHER_CIRCUIT_CT_A)
        )
        points.append({"name": name, "ct_primary": ct, "phases": point_phases})
    return {
        "model": model.code,
        "service": service,
        "points": points,
        "demand": {"type": "sliding", "interval_minutes": 15, "subinterval_minutes": 5},
        "pulse_inputs": [
            {"name": "Water", "unit": "L", "scale": 10.0},
            {"name": "Gas", "unit": "m³", "scale": 0.01},
        ],
    }


__all__ = ["CIRCUITS", "DEFAULT_MODEL", "demo_config"]
