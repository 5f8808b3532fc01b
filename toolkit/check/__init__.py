"""Check a backup: find what a path holds, check it, and its inventory."""
