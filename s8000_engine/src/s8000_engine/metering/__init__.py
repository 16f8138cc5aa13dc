"""Metering: waveform samples in, energy registers out (numpy).

With demand, pulse inputs, waveform files, synthetic loads and the accuracy
suite.
"""
