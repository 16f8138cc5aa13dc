"""A minimal asynchronous serial port for Modbus RTU (POSIX termios).

Opens a serial device — a USB RS-485 adapter, or one end of a
pseudo-terminal pair in the tests — in raw mode at 8 data bits with the
chosen parity and stop bits, and reads whole frames by the silence that
ends them (t3.5).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import termios
import time
from typing import Final

from s8000_engine.const import DEFAULT_BAUDRATE, DEFAULT_PARITY

BAUDRATES: Final = {
    1200: termios.B1200,
    2400: termios.B2400,
    4800: termios.B4800,
    9600: termios.B9600,
    19200: termios.B19200,
    38400: termios.B38400,
    57600: termios.B57600,
    115200: termios.B115200,
}


class SerialPort:
    """One serial device, read and written from the asyncio loop."""

    def __init__(
        self,
        device: str,
        *,
        baudrate: int = DEFAULT_BAUDRATE,
        parity: str = DEFAULT_PARITY,
        stopbits: int = 1,
    ) -> None:
        if baudrate not in BAUDRATES:
            raise ValueError(f"baud rate must be one of {', '.join(map(str, BAUDRATES))}")
        if parity not in ("N", "E", "O"):
            raise ValueError("parity must be N, E or O")
        if stopbits not in (1, 2):
            raise ValueError("stop bits must be 1 or 2")
        self.device = device
        self.baudrate = baudrate
        self.parity = parity
        self.stopbits = stopbits
        self.fd = -1
        self._data = asyncio.Queue[bytes]()

    async def open(self) -> None:
        """Open and configure the device."""
        try:
            self.fd = os.open(self.device, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as error:
            raise OSError(f"{self.device}: cannot open: {error.strerror}") from None
        attrs = termios.tcgetattr(self.fd)
        iflag, oflag, cflag, lflag, _, _, cc = attrs
        iflag = 0
        oflag = 0
        lflag = 0
        cflag = termios.CS8 | termios.CREAD | termios.CLOCAL
        if self.parity != "N":
            cflag |= termios.PARENB
            if self.parity == "O":
                cflag |= termios.PARODD
        if self.stopbits == 2:
            cflag |= termios.CSTOPB
        speed = BAUDRATES[self.baudrate]
        cc[termios.VMIN] = 0
        cc[termios.VTIME] = 0
        termios.tcsetattr(self.fd, termios.TCSANOW, [iflag, oflag, cflag, lflag, speed, speed, cc])
        asyncio.get_running_loop().add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self._data.put_nowait(data)

    async def read_frame(self, gap: float) -> bytes:
        """Bytes up to the next silence of ``gap`` seconds (at least one byte)."""
        frame = bytearray(await self._data.get())
        deadline = time.monotonic() + gap
        while True:
            try:
                chunk = await asyncio.wait_for(
                    self._data.get(), max(0.0, deadline - time.monotonic())
                )
            except TimeoutError:
                return bytes(frame)
            frame += chunk
            deadline = time.monotonic() + gap
            if len(frame) > 512:
                return bytes(frame)  # no valid frame is this long: let the CRC refuse it

    async def write(self, data: bytes) -> None:
        """Write all of ``data``."""
        view = memoryview(data)
        while view:
            try:
                written = os.write(self.fd, view)
            except BlockingIOError:
                await asyncio.sleep(0.001)
                continue
            view = view[written:]

    def close(self) -> None:
        """Close the device."""
        if self.fd >= 0:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self.fd)
            os.close(self.fd)
            self.fd = -1
