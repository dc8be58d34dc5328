"""seqclf's Lightning parts: its callbacks, checkpointing, progress bar and DDP strategy, and every
private Lightning name seqclf uses (seqclf.lightning.private, checked by its test)."""
