"""Metering: waveform samples in, energy registers out (numpy), with demand,
pulse inputs, waveform files, synthetic loads and the accuracy suite."""
