"""Reference for test/models/resnet-imagenet.test.ts, from torchvision's own resnet50
(Debian's python3-torchvision), independent of advml.

    resnet_imagenet_ref.py OUT_FILE

builds torchvision.models.resnet50() in float64 (its own initialisation, seeded),
runs a training-mode forward on x (2 images of 3x64x64, which updates the batch-norm
running statistics), then an inference-mode forward, and writes the state dict
(after the update), x and the inference logits to OUT_FILE (safetensors; names
"state.<param>", "x", "logits").
"""
import os
import sys

import torch
from torchvision.models import resnet50

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "nn"))
from state_dict_ref import save  # noqa: E402


def main():
    out_path = sys.argv[1]
    torch.manual_seed(0)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    model = resnet50().to(torch.float64)
    x = torch.rand(2, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        model.train()
        model(x)
        model.eval()
        logits = model(x)
    tensors = {"x": x, "logits": logits}
    tensors.update({f"state.{k}": v for k, v in model.state_dict().items()})
    save(out_path, tensors)


if __name__ == "__main__":
    main()
