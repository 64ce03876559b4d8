"""physviz benchmarks: ours against a peer in the same run, reported as ratios."""
