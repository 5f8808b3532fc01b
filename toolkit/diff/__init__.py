"""``rbkit diff A B``: what was lost, added or changed between two backups or servers."""
