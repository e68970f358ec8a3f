"""The PyTorch side of measure-allreduce.ts: the same all-reduces with
torch.distributed (Gloo, loopback, 2 processes), run by hand:

    /usr/bin/python3 test/distributed/measure_allreduce.py [floats=24000000] [reps=5]
"""
import os
import socket
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors


def gradient_sizes(total):
    weights = [2 ** (i // 7) for i in range(20)]
    unit = total / sum(weights)
    sizes, used = [], 0
    for w in weights:
        n = max(1, int(w * unit * 0.999))
        small = max(1, n // 2000)
        sizes += [n, small, small]
        used += n + 2 * small
    sizes[0] += total - used
    return sizes


def resnet20_sizes():
    sizes, c = [3 * 16 * 9, 16, 16], 16
    for w in (16, 32, 64):
        for _ in range(3):
            sizes += [c * w * 9, w, w, w * w * 9, w, w]
            c = w
    return sizes + [64 * 10, 10]


def timed(fn, n):
    fn()
    ts = []
    for _ in range(n):
        dist.barrier()
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ts)


def flatten_reduce(ts):
    flat = _flatten_dense_tensors(ts)
    dist.all_reduce(flat)
    for t, r in zip(ts, _unflatten_dense_tensors(flat, ts)):
        t.copy_(r)


def each(ts):
    for t in ts:
        dist.all_reduce(t)


def worker(rank, port, floats, reps):
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    res = {}
    one = torch.full((floats,), rank + 1.0)
    res["one tensor"] = timed(lambda: dist.all_reduce(one), reps)
    del one
    grads = [torch.full((n,), rank + 1.0) for n in gradient_sizes(floats)]
    res[f"{len(grads)} tensors, flatten"] = timed(lambda: flatten_reduce(grads), reps)
    res[f"{len(grads)} tensors, coalesced"] = timed(lambda: dist.all_reduce_coalesced(grads), reps)
    res[f"{len(grads)} tensors, each"] = timed(lambda: each(grads), reps)
    del grads
    small = [torch.full((n,), rank + 1.0) for n in resnet20_sizes()]
    total = sum(t.numel() for t in small)
    label = f"small model ({len(small)} tensors, {total} floats)"
    res[f"{label}, flatten"] = timed(lambda: flatten_reduce(small), 20 * reps)
    res[f"{label}, coalesced"] = timed(lambda: dist.all_reduce_coalesced(small), 20 * reps)
    res[f"{label}, each"] = timed(lambda: each(small), 20 * reps)
    if rank == 0:
        print(f"torch.distributed {torch.__version__} all-reduce of {floats} float32 across 2 processes, median of {reps} (ms):")
        for k, v in res.items():
            print(f"  {k:<56} {v:.2f}")
    dist.destroy_process_group()


if __name__ == "__main__":
    floats = int(sys.argv[1]) if len(sys.argv) > 1 else 24_000_000
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(worker, args=(port, floats, reps), nprocs=2)
