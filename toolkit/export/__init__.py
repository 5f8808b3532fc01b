"""rbkit export: one row per key of an RDB (docs/export.md)."""
