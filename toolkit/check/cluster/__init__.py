"""``rbkit check --cluster``: a Redis Cluster's backup set, one backup per shard, judged as a
whole (layout.py finds the shards, verdict.py judges them, report.py and render.py show it)."""
