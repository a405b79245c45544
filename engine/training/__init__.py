"""Training: the trainer, its config, data parallelism over shards, memory handling and
checkpoints."""
