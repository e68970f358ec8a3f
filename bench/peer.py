"""The PyTorch side of the peer benchmark.

A long-lived process: reads one JSON request per line on stdin
({"model", "mode", "batch", "threads", "seconds", "warmup"} and optionally
"channelsLast" and "precision") and answers one JSON line {"imagesPerSec",
"iterations"}. The models mirror advml's MnistCnn and ResNet (same layers,
shapes and names).

By default a request runs as a PyTorch user runs it: float32, NCHW, eager
mode. "threads": null leaves PyTorch's own thread count alone;
"channelsLast": true converts model and batch to channels-last;
"precision": "bf16-autocast" runs forward passes under
torch.autocast("cpu", torch.bfloat16) with the loss in float32. The allocator
settings come from the environment the caller starts this process with.
"""
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class MnistCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.fc1 = nn.Linear(64 * 5 * 5, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


class BasicBlock(nn.Module):
    def __init__(self, inc, outc, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inc, outc, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(outc)
        self.conv2 = nn.Conv2d(outc, outc, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(outc)
        self.downsample = None
        if stride != 1 or inc != outc:
            self.downsample = nn.Sequential(nn.Conv2d(inc, outc, 1, stride, bias=False), nn.BatchNorm2d(outc))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)


class ResNet(nn.Module):
    def __init__(self, depth=20, in_channels=3, classes=10):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)

        def stage(inc, outc, stride):
            return nn.Sequential(*[BasicBlock(inc if i == 0 else outc, outc, stride if i == 0 else 1) for i in range(n)])

        self.layer1 = stage(16, 16, 1)
        self.layer2 = stage(16, 32, 2)
        self.layer3 = stage(32, 64, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.avgpool(x).flatten(1))


def resnet18():
    import torchvision  # only this model needs it

    return torchvision.models.resnet18(num_classes=10)


MODELS = {
    "mnist-cnn": (MnistCnn, (1, 28, 28)),
    "resnet20": (ResNet, (3, 32, 32)),
    # torchvision's ImageNet-style ResNet-18 at a small input (bench/foreign-benchmark.ts).
    "resnet18": (resnet18, (3, 64, 64)),
}


def make_step(model, mode, x, y, precision="fp32"):
    def fwd(inp):
        # Forward at the requested precision; logits back in float32 for the loss.
        if precision == "fp32":
            return model(inp)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(inp)
        return out.float()

    if mode == "forward":
        model.eval()

        def step():
            with torch.no_grad():
                fwd(x)
    elif mode == "fgsm":
        model.eval()

        def step():
            xr = x.detach().requires_grad_(True)
            loss = F.cross_entropy(fwd(xr), y)
            (g,) = torch.autograd.grad(loss, xr)
            (xr.detach() + (8 / 255) * g.sign()).clamp_(0, 1)
    elif mode == "fgsm-eps-loop":
        # How per-eps libraries do it: one forward and backward pass per eps value.
        model.eval()

        def step():
            for eps in (2, 4, 8, 16):
                xr = x.detach().requires_grad_(True)
                loss = F.cross_entropy(fwd(xr), y)
                (g,) = torch.autograd.grad(loss, xr)
                (xr.detach() + (eps / 255) * g.sign()).clamp_(0, 1)
    elif mode == "eval-fgsm":
        # An evaluation pass as a per-eps library runs it: clean accuracy, then for each eps
        # an FGSM batch (its own forward and backward pass) and its accuracy.
        model.eval()

        def step():
            with torch.no_grad():
                (fwd(x).argmax(1) == y).float().mean()
            for eps in (2, 4, 8, 16):
                xr = x.detach().requires_grad_(True)
                (g,) = torch.autograd.grad(F.cross_entropy(fwd(xr), y), xr)
                with torch.no_grad():
                    adv = (x + (eps / 255) * g.sign()).clamp_(0, 1)
                    (fwd(adv).argmax(1) == y).float().mean()
    elif mode == "adv-train":
        # One step of the paper's Algorithm 1: k = m/2 step l.l. examples (eps 8) from the current
        # weights in inference mode, then a step on the mixed batch with the normalised loss.
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        m = x.shape[0]
        k = m // 2
        lam = 0.3

        def step():
            model.eval()
            xk = x[:k]
            with torch.no_grad():
                y_ll = model(xk).argmin(1)
            xr = xk.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(F.cross_entropy(fwd(xr), y_ll, reduction="sum"), xr)
            x_adv = (xk - (8 / 255) * g.sign()).clamp(0, 1)
            model.train()
            losses = F.cross_entropy(fwd(torch.cat([x_adv, x[k:]])), y, reduction="none")
            loss = (losses[k:].sum() + lam * losses[:k].sum()) / ((m - k) + lam * k)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
    elif mode == "train":
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def step():
            loss = F.cross_entropy(fwd(x), y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
    else:
        raise ValueError(f"unknown mode {mode}")
    return step


def measure(req):
    if req.get("threads") is not None:
        torch.set_num_threads(req["threads"])
    torch.manual_seed(0)
    cls, shape = MODELS[req["model"]]
    model = cls()
    b = req["batch"]
    x = torch.rand((b, *shape))
    y = torch.randint(0, 10, (b,))
    if req.get("channelsLast"):
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    step = make_step(model, req["mode"], x, y, req.get("precision", "fp32"))
    for _ in range(req["warmup"]):
        step()
    n = 0
    start = time.perf_counter()
    while True:
        step()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= req["seconds"] and n >= 3:
            break
    return {"imagesPerSec": n * b / elapsed, "iterations": n}


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            out = measure(json.loads(line))
        except Exception as e:  # reported to the caller, which names the request
            out = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    main()
