"""The front panel: the 2x16 LCD and three buttons as a state machine, and
its terminal client."""
