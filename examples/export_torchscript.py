"""Writes a small PyTorch MNIST classifier as TorchScript, with its model card,
for 'Bring your own model' in the README:

    python3 examples/export_torchscript.py my_model.pt

my_model.pt is a traced nn.Module (untrained here; export your own the same
way) and my_model.card.json tells advml what it takes: 1x28x28 images in
[0, 1] and the ten digits. advml reads the card beside the file.
"""
import json
import os
import sys

import torch
import torch.nn as nn


class SmallCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.25), nn.Linear(32 * 7 * 7, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


def main(path):
    torch.manual_seed(0)
    model = torch.jit.script(SmallCnn())
    model.save(path)
    card = {"inputRange": [0, 1], "inputShape": [1, 28, 28], "classNames": [str(d) for d in range(10)]}
    stem = os.path.splitext(path)[0]
    with open(stem + ".card.json", "w") as f:
        json.dump(card, f, indent=2)
    print(f"wrote {path} and {stem}.card.json")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "my_model.pt")
