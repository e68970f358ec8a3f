"""Reference for test/models/inception.test.ts, from torchvision's own Inception3
(Debian's python3-torchvision), independent of advml.

    inception_ref.py count RHO
        prints JSON {"total", "without_aux", "extra35", "extra17", "extra8"}: parameter
        counts of torchvision's Inception3 with every convolution's filters scaled by
        RHO, and of one extra block of each grid size (InceptionA(288, 64),
        InceptionC(768, 192), InceptionE(2048), scaled the same way).

    inception_ref.py logits RHO CLASSES OUT_FILE
        builds that model in float64 (PyTorch's default layer initialisation, seeded:
        torchvision's truncated-normal one only costs time here), runs a
        training-mode forward on x (which updates the batch-norm running statistics and
        gives the auxiliary logits), then an inference-mode forward, and writes the
        state dict (after the update), x, the inference logits and the training-mode
        auxiliary logits to OUT_FILE (safetensors; names "state.<param>", "x",
        "logits", "aux").

Scaling: a conv block given (in, out) channels builds BasicConv2d(round(RHO in),
round(RHO out)), except for the image's 3 input channels, and the two dense layers
take round(RHO 2048) and round(RHO 768) features. For RHO 0.5 and 2 every standard
channel count scales exactly, so concatenations add up as in advml's definition.
"""
import functools
import json
import os
import sys

import torch
import torch.nn as nn
from torchvision.models import inception as tv

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "nn"))
from state_dict_ref import save  # noqa: E402


def scaled(rho):
    s = lambda c: max(1, round(c * rho))  # noqa: E731

    def conv_block(in_channels, out_channels, **kwargs):
        return tv.BasicConv2d(in_channels if in_channels == 3 else s(in_channels), s(out_channels), **kwargs)

    return s, conv_block


def build(rho, classes, init_weights=True):
    s, conv_block = scaled(rho)
    blocks = [conv_block] + [
        functools.partial(b, conv_block=conv_block)
        for b in (tv.InceptionA, tv.InceptionB, tv.InceptionC, tv.InceptionD, tv.InceptionE, tv.InceptionAux)
    ]
    model = tv.Inception3(num_classes=classes, aux_logits=True, init_weights=init_weights, inception_blocks=blocks)
    if rho != 1:
        model.fc = nn.Linear(s(2048), classes)
        model.AuxLogits.fc = nn.Linear(s(768), classes)
    return model


def count(m):
    return sum(p.numel() for p in m.parameters())


def main():
    mode = sys.argv[1]
    rho = float(sys.argv[2])
    torch.manual_seed(0)
    if mode == "count":
        model = build(rho, 1000, init_weights=False)
        _, conv_block = scaled(rho)
        print(json.dumps({
            "total": count(model),
            "without_aux": count(model) - count(model.AuxLogits),
            "extra35": count(tv.InceptionA(288, 64, conv_block=conv_block)),
            "extra17": count(tv.InceptionC(768, 192, conv_block=conv_block)),
            "extra8": count(tv.InceptionE(2048, conv_block=conv_block)),
        }))
        return
    classes, out_path = int(sys.argv[3]), sys.argv[4]
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    model = build(rho, classes, init_weights=False).to(torch.float64)
    x = torch.rand(2, 3, 299, 299, dtype=torch.float64) * 2 - 1
    with torch.no_grad():
        model.train()
        _, aux = model(x)
        model.eval()
        logits = model(x)
    tensors = {"x": x, "logits": logits, "aux": aux}
    tensors.update({f"state.{k}": v for k, v in model.state_dict().items()})
    save(out_path, tensors)


if __name__ == "__main__":
    main()
