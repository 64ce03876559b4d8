"""End-to-end tests: real browsers on JupyterLab and JupyterHub, notebooks, Slurm and SSH."""
