"""Reference for test/models/torchscript.test.ts, from torchvision's own models
(Debian's python3-torch and python3-torchvision), independent of advml.

    torchscript_ref.py export OUT_DIR
        writes OUT_DIR/resnet18.pt (scripted, so train/eval mode switches) and
        OUT_DIR/mobilenet_v2.pt (traced in eval mode), both with random weights,
        10 classes, 3x32x32 inputs, and batch-norm running statistics moved off
        their initial values by two training-mode passes; and for each model
        OUT_DIR/NAME.ref.safetensors with
          x, w            the input batch and a weight on the logits
          logits          inference-mode logits of x
          grad            d sum(logits * w) / dx
        and for resnet18 also one plain SGD step (lr 0.1) on the mean
        cross-entropy of training-mode logits for labels y:
          y, train_logits, and after.NAME for every parameter and buffer.

    torchscript_ref.py dump PT X_FILE OUT_FILE
        loads PT with torch.jit.load, writes its state dict (state.NAME) and the
        inference-mode logits of X_FILE's x (logits) to OUT_FILE.

    torchscript_ref.py plainzip OUT_FILE
        writes an intact zip archive that holds no TorchScript module.
"""
import os
import sys
import zipfile

import torch
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "nn"))
from state_dict_ref import load, save  # noqa: E402


def build(name):
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(num_classes=10)
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.rand(8, 3, 32, 32))
    return model.eval()


def reference(model, x, w):
    x = x.clone().requires_grad_(True)
    logits = model(x)
    (grad,) = torch.autograd.grad((logits * w).sum(), x)
    return {"x": x.detach(), "w": w, "logits": logits.detach(), "grad": grad}


def export(out_dir):
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(4, 3, 32, 32, generator=gen)
    w = torch.randn(4, 10, generator=gen)

    resnet = torch.jit.script(build("resnet18"))
    resnet.save(os.path.join(out_dir, "resnet18.pt"))
    ref = reference(resnet, x, w)
    y = torch.tensor([1, 4, 7, 9])
    resnet.train()
    opt = torch.optim.SGD(resnet.parameters(), lr=0.1)
    train_logits = resnet(x)
    torch.nn.functional.cross_entropy(train_logits, y).backward()
    opt.step()
    ref["y"] = y
    ref["train_logits"] = train_logits.detach()
    for name, t in resnet.state_dict().items():
        ref["after." + name] = t.detach()
    save(os.path.join(out_dir, "resnet18.ref.safetensors"), ref)

    mobilenet = build("mobilenet_v2")
    traced = torch.jit.trace(mobilenet, x)
    traced.save(os.path.join(out_dir, "mobilenet_v2.pt"))
    save(os.path.join(out_dir, "mobilenet_v2.ref.safetensors"), reference(traced, x, w))


def dump(pt, x_file, out_file):
    model = torch.jit.load(pt).eval()
    x = load(x_file)["x"]
    out = {"state." + k: v.detach() for k, v in model.state_dict().items()}
    with torch.no_grad():
        out["logits"] = model(x)
    save(out_file, out)


if __name__ == "__main__":
    if sys.argv[1] == "export":
        export(sys.argv[2])
    elif sys.argv[1] == "dump":
        dump(*sys.argv[2:5])
    elif sys.argv[1] == "plainzip":
        with zipfile.ZipFile(sys.argv[2], "w") as z:
            z.writestr("archive/data.txt", "hello")
    else:
        raise SystemExit(f"unknown command {sys.argv[1]}: expected export, dump or plainzip")
