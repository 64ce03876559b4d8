"""The MPP-family transformer, field registry, checkpoints and rollout (arrives with issue 4)."""
