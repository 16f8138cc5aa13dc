"""The local meter's Modbus server: PDU handling, TCP, RTU and the serial port.

The project's own, not a library's: ``server.py`` says why.
"""
