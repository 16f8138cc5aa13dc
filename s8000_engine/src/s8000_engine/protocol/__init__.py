"""The protocol layer: the S8000's Modbus register map, defined once.

``sunspec`` declares the models and their points, ``regmap`` places them into
a meter's map, ``intervals`` encodes the interval memory's rows and
``publish`` prints the map.  The local meter's server, the client, ``probe``
and ``docs/registers.md`` are all driven from here.  Standard library only.
"""
