"""APGD-CE in PyTorch, written from the paper: the peer of bench/autoattack-benchmark.ts.

"Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks" (2020), Algorithm 1, as a PyTorch user would write
it: the whole batch runs every iteration (no per-image early exit), fp32,
NCHW, eager mode, one random start per image (uniform in the L-inf ball,
scaled so its largest entry is eps, as the paper's code starts), step 2 eps,
momentum 0.75, rho 0.75, checkpoints w_j = ceil(p_j N) with p_0 = 0,
p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06).

  python3 bench/apgd_peer.py REQUEST.json

REQUEST: {"model": "mnist-cnn" | "resnet20", "inChannels", "weights": a
safetensors file of the model's state dict, "images": a safetensors file
with "images" (float32 [N, C, H, W] in [0, 1]) and "labels" (int64 [N]),
"eps" (pixel units), "steps", "batch", "threads", "seed"}. Prints one JSON
line {"seconds", "robust": [0 or 1 per image], "torch"}.
"""
import json
import math
import struct
import sys
import time

import torch
import torch.nn.functional as F

from peer import MnistCnn, ResNet

DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}


def read_safetensors(path):
    """The tensors of a safetensors file (8-byte header length, JSON header, raw little-endian data)."""
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[begin:end]), dtype=DTYPES[info["dtype"]])
        out[name] = t.reshape(info["shape"]).clone()
    return out


def checkpoints(steps):
    """w_1 < w_2 < ... <= steps, with the p_j in hundredths so that ceil(p_j N) is exact."""
    out, previous, p = [], 0, 22
    while p <= 100:
        w = math.ceil(p * steps / 100)
        if 1 <= w <= steps and (not out or out[-1] != w):
            out.append(w)
        previous, p = p, p + max(p - previous - 3, 6)
    return out


def apgd_ce(model, x, y, eps, steps):
    """Per image: whether it stays correctly classified through every iterate of one APGD-CE run (L-inf)."""
    n = x.shape[0]
    marks = set(checkpoints(steps))
    lo, hi = x - eps, x + eps

    def project(z):
        return torch.min(torch.max(z, lo), hi).clamp(0, 1)

    def loss_grad(xa):
        xa = xa.clone().requires_grad_(True)
        logits = model(xa)
        loss = F.cross_entropy(logits, y, reduction="none")
        (g,) = torch.autograd.grad(loss.sum(), xa)
        return logits.detach(), loss.detach(), g

    t = torch.rand_like(x) * 2 - 1
    t = t / t.flatten(1).abs().max(1)[0].clamp_min(1e-12).view(-1, 1, 1, 1)
    xk = project(x + eps * t)
    logits, loss, grad = loss_grad(xk)
    robust = logits.argmax(1) == y
    best, best_grad, best_loss = xk.clone(), grad.clone(), loss.clone()
    eta = torch.full((n, 1, 1, 1), 2 * eps)
    previous = xk.clone()
    last_loss = loss.clone()
    rises = torch.zeros(n)
    halved_last = torch.zeros(n, dtype=torch.bool)
    best_at_last = best_loss.clone()
    window_start = 0
    for k in range(1, steps + 1):
        alpha = 1.0 if k == 1 else 0.75
        z = project(xk + eta * grad.sign())
        x_next = project(xk + alpha * (z - xk) + (1 - alpha) * (xk - previous))
        previous, xk = xk, x_next
        if k < steps:
            logits, loss, grad = loss_grad(xk)
        else:
            with torch.no_grad():
                logits = model(xk)
                loss = F.cross_entropy(logits, y, reduction="none")
        robust &= logits.argmax(1) == y
        rises += (loss > last_loss).float()
        last_loss = loss.clone()
        up = loss > best_loss
        best[up], best_grad[up], best_loss[up] = xk[up], grad[up], loss[up]
        if k in marks and k < steps:
            oscillating = rises < 0.75 * (k - window_start)
            stalled = ~halved_last & ~(best_loss > best_at_last)
            halve = oscillating | stalled
            eta[halve] /= 2
            xk[halve], grad[halve] = best[halve], best_grad[halve]
            last_loss[halve] = best_loss[halve]
            halved_last = halve
            best_at_last = best_loss.clone()
            rises.zero_()
            window_start = k
    return robust


def main():
    req = json.load(open(sys.argv[1]))
    torch.set_num_threads(req["threads"])
    torch.manual_seed(req.get("seed", 0))
    model = MnistCnn() if req["model"] == "mnist-cnn" else ResNet(depth=20, in_channels=req["inChannels"])
    state = read_safetensors(req["weights"])
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if not m.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise SystemExit(f"weights do not fit the model: missing {missing}, unexpected {unexpected}")
    model.eval()
    data = read_safetensors(req["images"])
    x, y = data["images"], data["labels"]
    eps = req["eps"] / 255
    start = time.perf_counter()
    with torch.no_grad():
        correct = torch.cat([model(x[i : i + req["batch"]]).argmax(1) for i in range(0, len(x), req["batch"])]) == y
    robust = correct.clone()
    # As the paper's code does: only the correctly classified images are attacked.
    idx = correct.nonzero().flatten()
    for i in range(0, len(idx), req["batch"]):
        rows = idx[i : i + req["batch"]]
        robust[rows] = apgd_ce(model, x[rows], y[rows], eps, req["steps"])
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "robust": robust.int().tolist(), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
