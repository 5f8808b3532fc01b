"""rbkit: inspect, validate, restore and compare Redis backups."""

__version__ = "0.1.0"
