"""``rbkit restore BACKUP --to URL [--cluster]``: restore over the network into a running server.

command.py   the entry point (steps, exit codes); report.py: the report, its JSON and text
target.py    the URL (no password ever shown) and what the target says about itself
source.py    the backup's keys with their raw value bytes (an AOF becomes an RDB first)
plan.py      the preflight: payload or command path, per-db counts, refusals
payload.py   DUMP payloads (type byte, value bytes, RDB version, CRC-64)
commands.py  a decoded value as plain commands, for targets that cannot RESTORE the payloads
load.py      pipelined batches into one server (per db) or a cluster (per slot)
verify.py    reading the target back
"""
