"""Writes the models of bench/foreign-benchmark.ts, from bench/peer.py's own
definitions, so both sides run the same network:

    export_foreign.py OUT_DIR

OUT_DIR/resnet20.pt and .onnx: peer.py's ResNet-20 (the zoo's architecture, as
torch.nn), 3x32x32; OUT_DIR/resnet18.pt and .onnx: torchvision's ResNet-18 with
10 classes, 3x64x64. TorchScript is scripted (so it can train), ONNX exported
in inference mode at opset 13. Weights are PyTorch's seeded initialisation.
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from peer import MODELS  # noqa: E402


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    for name in ("resnet20", "resnet18"):
        cls, shape = MODELS[name]
        torch.manual_seed(0)
        model = cls().eval()
        torch.jit.script(model).save(os.path.join(out_dir, f"{name}.pt"))
        torch.onnx.export(model, torch.rand(1, *shape), os.path.join(out_dir, f"{name}.onnx"), opset_version=13,
                          input_names=["x"], output_names=["logits"], dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}})
        print(f"wrote {name}.pt and {name}.onnx ({'x'.join(map(str, shape))})")


if __name__ == "__main__":
    main(sys.argv[1])
