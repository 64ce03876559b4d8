"""Helpers that start real parts for tests (sshd, Slurm) and look for leftover processes."""
