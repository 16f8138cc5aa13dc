"""Constants that every layer shares."""

from __future__ import annotations

from typing import Final

#: The firmware revision the local meter reports (Common model ``Vr``, the
#: front panel's diagnostics, the web page): the release of Leviton's
#: firmware whose behaviour it follows.
FIRMWARE: Final = "1.60"
#: Its build number (vendor model ``FwBuild``).
FIRMWARE_BUILD: Final = 1600

#: The RS-485 port's line settings: the baud rates it runs at (user guide,
#: table 1), and the defaults every part of the project starts from, so a
#: first RTU setup with no setting changed talks to a meter left as shipped.
#: Even parity is the default the Modbus serial-line specification
#: (V1.02, §2.5.1) requires of every device.
BAUDRATES: Final = (9600, 19200)
DEFAULT_BAUDRATE: Final = 19200
DEFAULT_PARITY: Final = "E"

#: The meter's energy registers per point, in the order every layer keeps
#: them: the metering engine's first columns, the interval memory's rows, the
#: vendor model's per-point registers, the export's columns and the client's
#: PointData attributes.  Delivered is utility to load (quadrants I and IV),
#: received is load to utility (II and III).
ENERGY_REGISTERS: Final = ("kwh_delivered", "kwh_received", "kvarh_delivered", "kvarh_received")
#: The reactive energy of each quadrant, which the meter keeps besides.
QUADRANT_REGISTERS: Final = ("kvarh_q1", "kvarh_q2", "kvarh_q3", "kvarh_q4")

#: The largest CT primary rating a meter point takes, in amps (the
#: configuration's bound and the vendor model's ``Pt{n}CT`` register's).
MAX_CT_PRIMARY_A: Final = 10000.0
#: The units per pulse a pulse input may be scaled by, both ends included
#: (the configuration's bound and the vendor model's ``P{n}Scale`` register's).
PULSE_SCALE_MIN: Final = 1e-6
PULSE_SCALE_MAX: Final = 1e6
