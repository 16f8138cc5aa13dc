"""The numpy array types the meter's layers share."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

#: Samples, watt-hours, angles: every float array of the meter.
type FloatArray = npt.NDArray[np.float64]
#: Whole registers (mWh) and counts.
type IntArray = npt.NDArray[np.int64]
