"""Reference for test/data/loader.test.ts: PyTorch's DistributedSampler orders.

For each case, the indices every rank gets from torch.utils.data.DistributedSampler
(shuffle=True, the given seed, set_epoch(epoch), drop_last), and the plain
randperm of the epoch. Run with Debian's python3-torch:
    /usr/bin/python3 test/data/sampler_ref.py > test/data/sampler_ref.json
"""
import json

import torch
from torch.utils.data import DistributedSampler

CASES = [
    # (length, world_size, seed, epoch, drop_last)
    (10, 3, 7, 0, False),
    (10, 3, 7, 0, True),
    (10, 3, 7, 1, False),
    (23, 4, 0, 5, False),
    (23, 4, 0, 5, True),
    (2, 5, 3, 2, False),
    (1000, 8, 123, 3, False),
]

out = []
for length, world, seed, epoch, drop_last in CASES:
    g = torch.Generator()
    g.manual_seed(seed + epoch)
    perm = torch.randperm(length, generator=g).tolist()
    ranks = []
    for rank in range(world):
        s = DistributedSampler(range(length), num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=drop_last)
        s.set_epoch(epoch)
        ranks.append(list(s))
    out.append({"length": length, "worldSize": world, "seed": seed, "epoch": epoch, "dropLast": drop_last,
                "perm": perm, "ranks": ranks})

print(json.dumps({"torch": torch.__version__, "cases": out}))
