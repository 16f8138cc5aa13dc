"""The Modbus server of the local meter: PDU handling, TCP, RTU and the
serial port (the project's own; see ``server.py`` for why)."""
