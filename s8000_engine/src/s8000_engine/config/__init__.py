"""The meter's configuration, validated (voluptuous); the settings form over it.

Metering, unit, demand, pulse inputs and reporting, and the configuration
tool's settings form over them.
"""
