"""Redis Cluster formats: hash slots of keys, and the node tables nodes.conf and nodes.json."""
