"""The torchvision side of the loader benchmark (bench/loader-benchmark.ts).

    /usr/bin/python3 bench/loader_peer.py '{"root": ..., "size": 224, "batch": 64, "workers": 2, "epochs": 1, "seed": 0}'

torchvision's ImageFolder (PIL decoding, convert('RGB')) and torch's DataLoader (shuffled, num_workers
worker processes, persistent across epochs, default prefetch_factor 2) with RandomResizedCrop(size) (scale
0.08-1, ratio 3/4-4/3, bilinear), RandomHorizontalFlip and ToTensor: the pipeline advml's
imagenetTrainTransforms(size) gives. One untimed epoch starts the workers and warms the page cache; then
`epochs` timed epochs, every batch taken in the main process as a float32 [N, 3, size, size] tensor. Prints
one JSON line {"imagesPerSec", "images", "seconds", "cpuMsPerImage", "torch", "torchvision"}; cpuMsPerImage is
the CPU time of this process and its workers (reaped at the end) over all epochs, warm-up included, per image.
"""
import gc
import json
import resource
import sys
import time

import torch
import torchvision
from torchvision import datasets, transforms


def cpu_seconds():
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main():
    req = json.loads(sys.argv[1])
    cpu0 = cpu_seconds()
    torch.manual_seed(req['seed'])
    tf = transforms.Compose([transforms.RandomResizedCrop(req['size']), transforms.RandomHorizontalFlip(), transforms.ToTensor()])
    ds = datasets.ImageFolder(req['root'], transform=tf)
    workers = req['workers']
    loader = torch.utils.data.DataLoader(ds, batch_size=req['batch'], shuffle=True, num_workers=workers, persistent_workers=workers > 0)
    shape = None
    for images, _ in loader:  # warm-up epoch
        shape = list(images.shape)
    images_seen = 0
    start = time.perf_counter()
    for _ in range(req['epochs']):
        for images, labels in loader:
            images_seen += images.shape[0]
    seconds = time.perf_counter() - start
    # Shutting the workers down reaps them, so their CPU time is counted in RUSAGE_CHILDREN.
    del loader
    gc.collect()
    cpu_ms = (cpu_seconds() - cpu0) * 1000 / (images_seen + len(ds))
    print(json.dumps({'imagesPerSec': images_seen / seconds, 'images': images_seen, 'seconds': seconds, 'shape': shape, 'cpuMsPerImage': cpu_ms,
                      'torch': torch.__version__, 'torchvision': torchvision.__version__}))


if __name__ == '__main__':
    main()
