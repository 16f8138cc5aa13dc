"""The S8000 engine: the Leviton Series 8000 submeter in software.

The package knows the meter's models and wiring, meters waveform samples into
energy registers, keeps interval memory, speaks Modbus TCP/RTU and can run as
a local meter.  The Home Assistant integration in ``custom_components/s8000``
builds on it.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
