"""The meter's configuration: metering, unit, demand, pulse inputs, reporting,
and the configuration tool's settings form over them (validated with voluptuous)."""
