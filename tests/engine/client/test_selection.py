"""Reading only some values (:class:`Selection`): against the local meter's
process, and against a fixed register image the local meter rendered, so a
selection and a full read see the very same registers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from s8000_engine.client import (
    FRAME_COST_RTU,
    FRAME_COST_TCP,
    BackendName,
    S8000Client,
    Selection,
    connect_tcp,
)
from s8000_engine.config.meter import meter_config
from s8000_engine.exceptions import S8000NotAnS8000, S8000WrongMeter
from s8000_engine.local.image import MeterSnapshot, build_map, render
from s8000_engine.local.meter import DEMO_CONFIG
from tests.engine.client.test_client import START, backend, meter_backend, metered
from tests.engine.meterproc import serving, serving_meter

__all__ = ["backend"]  # the fixture, for pytest

#: What Home Assistant's default entities need of a meter of eight points.
DEFAULT = Selection.of(
    ["utc", "voltage"], {n: ["kwh_delivered", "kwh_received", "w"] for n in range(1, 9)}
)


class Recording:
    """A unit that records every register read going through it."""

    def __init__(self, unit: Any) -> None:
        self._unit = unit
        self.reads: list[tuple[int, int]] = []

    async def read_holding_registers(self, address: int, count: int) -> list[int]:
        self.reads.append((address, count))
        result: list[int] = await self._unit.read_holding_registers(address, count)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._unit, name)

    def registers(self) -> int:
        return sum(count for _, count in self.reads)

    def wire_ms(self) -> float:
        """On an RS-485 line at 19,200 baud, 8E1: bytes × 11 bits, t3.5 after each frame."""
        frames = len(self.reads)
        octets = sum(8 + 5 + 2 * count for _, count in self.reads)
        return (octets * 11 + 2 * frames * 3.5 * 11) / 19200 * 1000


@pytest.fixture(scope="module")
def running_meter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """`s8000-engine run --simulate` (the demo S8UTS-083) serving Modbus TCP on loopback."""
    with serving_meter(tmp_path_factory.mktemp("meter"), "--start", START) as port:
        asyncio.run(_first_metered_second(port))
        yield port


async def _first_metered_second(port: int) -> None:
    """Wait until the meter has metered: it serves its registers before its
    first metered second, without readings (a test reading at once sees no
    voltage)."""
    deadline = time.monotonic() + 60
    async with connect_tcp("127.0.0.1", port) as client:
        while (await client.read()).frequency is None:
            assert time.monotonic() < deadline, "the meter did not meter"
            await asyncio.sleep(0.05)


async def test_a_selection_reads_less_of_the_live_meter(
    running_meter: int, backend: BackendName
) -> None:
    async with connect_tcp("127.0.0.1", running_meter, backend=backend) as linked:
        recording = Recording(linked.unit)
        client = S8000Client(recording)  # type: ignore[arg-type]
        full = await client.read()
        full_reads = list(recording.reads)
        recording.reads.clear()
        data = await client.read(DEFAULT)
    assert data.transactions == len(recording.reads)
    assert recording.registers() < sum(count for _, count in full_reads) / 2
    assert data.utc is not None
    assert full.utc is not None
    assert abs(data.utc - full.utc) < 60
    assert data.voltage["A"] == pytest.approx(120.0, rel=0.05)
    solar = data.point(4)
    assert solar.w is not None
    assert solar.w < 0, "the solar point exports at noon"
    for point, before in zip(data.points, full.points, strict=True):
        assert point.kwh_delivered is not None
        assert before.kwh_delivered is not None
        assert point.kwh_delivered >= before.kwh_delivered
        assert point.kwh_received is not None
        # Not selected: not read.
        assert point.var is None
        assert point.kvarh_delivered is None
        assert point.phase_w == {}
    assert data.frequency is None
    assert data.line_voltage == {"AB": None, "BC": None, "CA": None}
    assert "point1.TotWhImp" not in data.raw


async def test_a_selection_decodes_what_a_full_read_does(tmp_path: Path) -> None:
    """The same registers, read whole and read in part: the selected values
    are equal; over RS-485 the selection's plan costs a fraction of the wire."""
    config, snapshot = metered(tmp_path)
    served = meter_backend(config, snapshot)
    everything: Any = Selection.of(
        ["utc", "status", "voltage", "line_voltage", "frequency", "pulses", "intervals"],
        {
            n: [
                "kwh_delivered", "kwh_received", "kvarh_delivered", "kvarh_received", "w",
                "var", "va", "pf", "a", "phase_w", "phase_a", "demand_w", "peak_demand_w",
                "peak_demand_time", "ct_primary_a",
            ]
            for n in range(1, 9)
        },
    )  # fmt: skip
    async with serving(served) as port, connect_tcp("127.0.0.1", port) as linked:
        recording = Recording(linked.unit)
        client = S8000Client(recording)  # type: ignore[arg-type]
        full = await client.read()
        full_ms = recording.wire_ms()
        for selection in (everything, DEFAULT):
            for cost in (FRAME_COST_TCP, FRAME_COST_RTU):
                recording.reads.clear()
                data = await client.read(selection, frame_cost=cost)
                for field in ("utc", "voltage"):
                    assert getattr(data, field) == getattr(full, field), field
                for point, whole in zip(data.points, full.points, strict=True):
                    for field in ("kwh_delivered", "kwh_received", "w", "ct_primary_a"):
                        assert getattr(point, field) == getattr(whole, field), field
                if selection is everything:
                    assert data.points == full.points
                    assert data.pulses == full.pulses
                    assert data.intervals == full.intervals
                    assert (data.frequency, data.status) == (full.frequency, full.status)
        # The selection of the default entities, planned for RS-485.
        recording.reads.clear()
        await client.read(DEFAULT, frame_cost=FRAME_COST_RTU)
        default_ms = recording.wire_ms()
        # The same, planned for TCP: the fewest requests.
        recording.reads.clear()
        tcp = await client.read(DEFAULT, frame_cost=FRAME_COST_TCP)
    assert default_ms < full_ms / 2
    assert tcp.transactions <= full.transactions
    assert all(count <= 125 for _, count in recording.reads)


async def test_scale_factors_are_read_again_when_the_configuration_changes(
    tmp_path: Path,
) -> None:
    """A selection reads the scale factors once, and again only when what they
    follow (a point's CT, the service, the PT ratio, the nominal voltage)
    changes; the power is then scaled with the new ones."""
    config, snapshot = metered(tmp_path)
    served = meter_backend(config, snapshot)
    regmap = served.regmap
    w_sf = regmap.address_of("point2", "W_SF")
    async with serving(served) as port, connect_tcp("127.0.0.1", port) as linked:
        recording = Recording(linked.unit)
        client = S8000Client(recording)  # type: ignore[arg-type]
        first = await client.read(DEFAULT, frame_cost=FRAME_COST_RTU)

        def read_sf() -> bool:
            return any(a <= w_sf < a + n for a, n in recording.reads)

        assert read_sf()
        recording.reads.clear()
        again = await client.read(DEFAULT, frame_cost=FRAME_COST_RTU)
        assert not read_sf()
        assert again.point(2).w == first.point(2).w

        # Point 2 gets a CT of 5000 A: its power is now in tens of watts.
        bigger = dict(DEMO_CONFIG)
        bigger["points"] = [dict(p) for p in DEMO_CONFIG["points"]]
        bigger["points"][1]["ct_primary"] = 5000
        other = meter_config(bigger)
        image = render(build_map(other), MeterSnapshot(other, serial=snapshot.serial))
        old_sf = render(regmap, snapshot)[w_sf - regmap.base]
        new_sf = image[w_sf - regmap.base]
        assert new_sf != old_sf
        raw_w = 1234
        image[regmap.address_of("point2", "W") - regmap.base] = raw_w
        served.update(image)
        recording.reads.clear()
        changed = await client.read(DEFAULT, frame_cost=FRAME_COST_RTU)
        assert read_sf()
        assert changed.point(2).ct_primary_a == 5000
        assert changed.point(2).w == pytest.approx(raw_w * 10.0**new_sf)


async def test_a_selection_still_catches_a_moved_map_and_another_meter() -> None:
    fewer = dict(DEMO_CONFIG)
    fewer["points"] = [dict(p) for p in DEMO_CONFIG["points"][:7]]
    seven = meter_config(fewer)
    served = meter_backend(seven, MeterSnapshot(seven, serial="4200012345"))
    selection = Selection.of(["utc"], {n: ["kwh_delivered", "w"] for n in range(1, 9)})
    async with serving(served) as port, connect_tcp("127.0.0.1", port) as client:
        await client.identify()
        assert len((await client.read(selection)).points) == 7

        # Another meter of the same layout at the same address.
        served.update(render(build_map(seven), MeterSnapshot(seven, serial="0000000001")))
        with pytest.raises(S8000WrongMeter, match="0000000001"):
            await client.read(selection, frame_cost=FRAME_COST_RTU)

        # No marker, or no end model, where they were: the map moved, and
        # identifying again finds no S8000 there; the map is forgotten.
        image = render(build_map(seven), MeterSnapshot(seven, serial="4200012345"))
        for address in (40000, build_map(seven).end - 2):
            broken = list(image)
            broken[address - 40000] = 0
            served.update(broken)
            with pytest.raises(S8000NotAnS8000):
                await client.read(selection)
            assert client.regmap is None
            served.update(image)
            await client.read(selection)  # identifies again

        # The same meter with a point more: the vendor model has moved on, so
        # the read identifies again and reads the new map in the same call.
        eight = meter_config(DEMO_CONFIG)
        served.set_map(
            build_map(eight), render(build_map(eight), MeterSnapshot(eight, serial="4200012345"))
        )
        data = await client.read(selection, frame_cost=FRAME_COST_RTU)
        assert len(data.points) == 8
        assert "s8000.Pt8WhImp" in data.raw  # read, in the new place
