"""Reference for test/optim/optimizers.test.ts: runs torch.optim (and, for
TensorFlow's RMSProp, a NumPy transcription of TensorFlow's documented
ApplyRMSProp update) on the deterministic parameter and gradient sequences the
test also builds, and prints the final parameters as JSON.

stdin: {"cases": [{"name", "kind", "lr", "opts", "steps", "lrAt"?}]}
stdout: {"<name>": [[p0 values...], [p1 values...]]}
"""
import json
import math
import sys

import numpy as np
import torch

SHAPES = [(3, 4), (5,)]


def initial(k, n):
    return [math.sin(0.37 * i + k) for i in range(n)]


def gradient(k, n, t):
    return [math.cos(0.7 * i + 0.3 * t + k) * (1 + 0.1 * t) for i in range(n)]


def lr_at(case, t):
    return case["lrAt"][t] if case.get("lrAt") else case["lr"]


def run_torch(case):
    params = [torch.tensor(initial(k, math.prod(s)), dtype=torch.float64).reshape(s).requires_grad_() for k, s in enumerate(SHAPES)]
    o = case["opts"]
    kind = case["kind"]
    if kind == "SGD":
        opt = torch.optim.SGD(params, lr=case["lr"], momentum=o.get("momentum", 0), dampening=o.get("dampening", 0),
                              nesterov=o.get("nesterov", False), weight_decay=o.get("weightDecay", 0))
    elif kind == "RMSProp":
        opt = torch.optim.RMSprop(params, lr=case["lr"], alpha=o.get("alpha", 0.99), eps=o.get("eps", 1e-8),
                                  momentum=o.get("momentum", 0), centered=o.get("centered", False),
                                  weight_decay=o.get("weightDecay", 0))
    elif kind == "Adam":
        betas = tuple(o.get("betas", (0.9, 0.999)))
        opt = torch.optim.Adam(params, lr=case["lr"], betas=betas, eps=o.get("eps", 1e-8), weight_decay=o.get("weightDecay", 0))
    else:
        raise ValueError(kind)
    for t in range(case["steps"]):
        for g in opt.param_groups:
            g["lr"] = lr_at(case, t)
        for k, p in enumerate(params):
            p.grad = torch.tensor(gradient(k, p.numel(), t), dtype=torch.float64).reshape(p.shape)
        opt.step()
    return [p.detach().flatten().tolist() for p in params]


def run_tf_rmsprop(case):
    """TensorFlow's ApplyRMSProp: ms starts at 1 (RMSPropOptimizer's slot initialiser);
    ms = rho ms + (1 - rho) g^2; mom = momentum mom + lr g / sqrt(ms + eps); var -= mom."""
    o = case["opts"]
    rho, eps, momentum = o.get("alpha", 0.9), o.get("eps", 1.0), o.get("momentum", 0.9)
    out = []
    for k, s in enumerate(SHAPES):
        n = math.prod(s)
        var = np.array(initial(k, n))
        ms = np.ones(n)
        mom = np.zeros(n)
        for t in range(case["steps"]):
            g = np.array(gradient(k, n, t))
            ms = rho * ms + (1 - rho) * g * g
            mom = momentum * mom + lr_at(case, t) * g / np.sqrt(ms + eps)
            var = var - mom
        out.append(var.tolist())
    return out


def main():
    cases = json.load(sys.stdin)["cases"]
    result = {}
    for c in cases:
        if c["kind"] == "RMSProp" and c["opts"].get("variant") == "tensorflow":
            result[c["name"]] = run_tf_rmsprop(c)
        else:
            result[c["name"]] = run_torch(c)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
