"""A small distributed worker for backend tests: gloo all_reduce per step, metrics.jsonl like physviz.train.

Run under torchrun: ``worker.py STEPS SLEEP_S [OUTPUT_DIR]`` (default output: $PHYSVIZ_OUTPUT_DIR).
Rank 0 writes one "train" line per step and a final "done" line; every rank prints a line per step.
"""
import json
import os
import sys
import time

import torch
import torch.distributed as dist


def main() -> None:
    steps, pause = int(sys.argv[1]), float(sys.argv[2])
    out = sys.argv[3] if len(sys.argv) > 3 else os.environ["PHYSVIZ_OUTPUT_DIR"]
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    os.makedirs(out, exist_ok=True)
    metrics = open(os.path.join(out, "metrics.jsonl"), "a") if rank == 0 else None
    print(f"worker rank={rank} world={world} host={os.uname().nodename} pid={os.getpid()}", flush=True)
    for step in range(1, steps + 1):
        t = torch.tensor([float(rank + 1)])
        dist.all_reduce(t)
        print(f"step {step} rank {rank} sum {t.item():g}", flush=True)
        if metrics is not None:
            metrics.write(json.dumps({"kind": "train", "step": step, "epoch": 0, "loss": 1.0 / step,
                                      "world_sum": t.item(), "time": time.time()}) + "\n")
            metrics.flush()
        time.sleep(pause)
    dist.barrier()
    if metrics is not None:
        metrics.write(json.dumps({"kind": "done", "step": steps, "checkpoint": None, "time": time.time()}) + "\n")
        metrics.close()
    dist.destroy_process_group()
    print(f"worker rank={rank} done", flush=True)


if __name__ == "__main__":
    main()
