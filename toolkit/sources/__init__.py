"""Backups wherever they are: a local file, compressed or not, stdin (``-``), object storage
or HTTP. :func:`~toolkit.sources.opened.open_backup` turns any of them into a local path that
the mapped-file parser reads; check, diff and restore all open their backups through it."""
