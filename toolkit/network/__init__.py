"""``rbkit restore BACKUP --to URL [--cluster]``: restore over the network into a running server."""
