"""The local meter: a software S8000 that meters, records and serves its registers.

With its register image, live view, simulated panels and mDNS announcements.
"""
