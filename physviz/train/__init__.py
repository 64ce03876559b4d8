"""Windowed datasets, balanced sampling and the DDP/FSDP2 training loop (arrives with issue 5)."""
