"""Job specs, the durable job store and local/SSH/Slurm backends (arrives with issue 7; never imports torch)."""
