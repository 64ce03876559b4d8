"""The Jupyter server extension: REST API for jobs (arrives with issue 9; never imports torch)."""
