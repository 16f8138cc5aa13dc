"""Draw the integration's brand images (the S8000 front panel as an icon).

Writes custom_components/s8000/brand/icon.png (256 x 256) and icon@2x.png
(512 x 512): a rounded dark panel with the two-line LCD and the three buttons
of the meter's front panel.  Needs numpy only; run from the repository root:

    python scripts/brand_icon.py
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import numpy.typing as npt

BRAND = Path(__file__).resolve().parent.parent / "custom_components" / "s8000" / "brand"
SUPERSAMPLE = 4

FloatArray = npt.NDArray[np.float64]


def _rounded_rect(
    x: FloatArray, y: FloatArray, box: tuple[float, float, float, float], radius: float
) -> FloatArray:
    """Coverage (0/1) of a rounded rectangle; coordinates are fractions of the side."""
    x0, y0, x1, y1 = box
    cx = np.clip(x, x0 + radius, x1 - radius)
    cy = np.clip(y, y0 + radius, y1 - radius)
    inside = (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
    return (inside & ((x - cx) ** 2 + (y - cy) ** 2 <= radius**2)).astype(np.float64)


def _circle(x: FloatArray, y: FloatArray, cx: float, cy: float, r: float) -> FloatArray:
    return (((x - cx) ** 2 + (y - cy) ** 2) <= r**2).astype(np.float64)


def render(size: int) -> npt.NDArray[np.uint8]:
    """Return the icon as an RGBA array of ``size`` x ``size``."""
    n = size * SUPERSAMPLE
    axis = (np.arange(n, dtype=np.float64) + 0.5) / n
    x, y = np.meshgrid(axis, axis)
    rgba = np.zeros((n, n, 4))

    def paint(mask: FloatArray, colour: tuple[int, int, int]) -> None:
        for channel, value in enumerate(colour):
            rgba[..., channel] = np.where(mask > 0, value / 255, rgba[..., channel])
        rgba[..., 3] = np.maximum(rgba[..., 3], mask)

    paint(_rounded_rect(x, y, (0.04, 0.04, 0.96, 0.96), 0.16), (18, 52, 86))  # panel
    paint(_rounded_rect(x, y, (0.14, 0.2, 0.86, 0.56), 0.05), (160, 214, 92))  # LCD
    for row in (0.29, 0.43):  # two rows of characters
        for col in range(8):
            left = 0.2 + col * 0.077
            paint(_rounded_rect(x, y, (left, row, left + 0.055, row + 0.07), 0.01), (34, 64, 30))
    for cx in (0.3, 0.5, 0.7):  # left, Display and right buttons
        paint(_circle(x, y, cx, 0.75, 0.075), (245, 197, 24))
    blocks = rgba.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE, 4).mean(axis=(1, 3))
    image: npt.NDArray[np.uint8] = np.round(blocks * 255).astype(np.uint8)
    return image


def write_png(path: Path, image: npt.NDArray[np.uint8]) -> None:
    """Write an RGBA array as a PNG file (no dependency beyond zlib)."""
    height, width, _ = image.shape
    raw = b"".join(b"\x00" + image[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def main() -> None:
    """Write icon.png and icon@2x.png."""
    BRAND.mkdir(parents=True, exist_ok=True)
    write_png(BRAND / "icon.png", render(256))
    write_png(BRAND / "icon@2x.png", render(512))


if __name__ == "__main__":
    main()
