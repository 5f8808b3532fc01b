"""The restore drill: load a backup into a scratch server and compare."""
