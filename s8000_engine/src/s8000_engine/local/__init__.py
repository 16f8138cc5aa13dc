"""The local meter: a software S8000 that meters, records, serves its
registers and announces itself; its live view and simulated panels."""
