#!/usr/bin/python3
"""Writes a synthetic image folder in ImageNet's layout, for loader tests and benchmarks.

    /usr/bin/python3 scripts/make-imagenet-folder.py ROOT [--classes 20] [--train 50] [--val 10]
        [--seed 0] [--quality 90]

gives ROOT/train/<wnid>/<wnid>_<k>.JPEG and ROOT/val/<wnid>/ILSVRC2012_val_<k>.JPEG, N classes with
M (and K) images each. The wnids are made up (n00000000, n00000001, ...), in the format of real ones.
The same arguments always write the same bytes.

Why not flat colours: a decoder's cost depends on the content (entropy decoding of DCT
coefficients dominates JPEG decoding), so the images are natural-ish: smooth multi-scale noise
(a few octaves of bilinearly upsampled random grids), a colour gradient, random ellipses,
rectangles and polygons, and fine grain, encoded at quality 90 (4:2:0 chroma subsampling, PIL's
default). Files average about 88 KB, near ImageNet's average of about 110 KB.

Sizes, drawn to resemble ILSVRC-2012's training images (most come from Flickr at 500 px on the
long side; the median is 500x375, widths mostly 300-800, mean about 400x350): the long side is
500 with probability 0.6, else log-normal around 500 (sigma 0.25) clipped to [300, 800]; the
aspect ratio (long / short) is exactly 4/3 with probability 0.45 (ImageNet has a spike at
500x375), else log-normal around 4/3 (sigma 0.15) clipped to [1, 2]; 15% of the images are
portrait. 1000 images drawn this way have median 500x375 and widths 300-800 but for portraits.
"""
import argparse
import os
import sys

import numpy as np
from PIL import Image, ImageDraw


def image_size(rng):
    long_side = 500 if rng.random() < 0.6 else int(np.clip(round(500 * np.exp(rng.normal(0, 0.25))), 300, 800))
    aspect = 4 / 3 if rng.random() < 0.45 else float(np.clip(np.exp(rng.normal(np.log(4 / 3), 0.15)), 1.0, 2.0))
    short_side = max(1, round(long_side / aspect))
    return (short_side, long_side) if rng.random() < 0.15 else (long_side, short_side)  # (width, height)


def smooth_noise(rng, width, height):
    """Octaves of random grids upsampled bilinearly: blobs at several scales, in [0, 1]."""
    out = np.zeros((height, width, 3), np.float32)
    total = 0.0
    for octave, cells in enumerate((3, 7, 17, 41, 101)):
        grid = (rng.random((cells, cells, 3)) * 255).astype(np.uint8)
        up = np.asarray(Image.fromarray(grid, 'RGB').resize((width, height), Image.BILINEAR), np.float32) / 255
        weight = 0.7 ** octave
        out += weight * up
        total += weight
    return out / total


def synthetic_image(rng, width, height):
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    t = (np.cos(angle) * xs / width + np.sin(angle) * ys / height + 1) / 2
    c0, c1 = rng.random(3), rng.random(3)
    gradient = c0[None, None, :] * (1 - t[..., None]) + c1[None, None, :] * t[..., None]
    base = 0.55 * smooth_noise(rng, width, height) + 0.45 * gradient
    img = Image.fromarray((np.clip(base, 0, 1) * 255).astype(np.uint8), 'RGB')
    draw = ImageDraw.Draw(img)
    for _ in range(rng.integers(4, 12)):
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        x0, y0 = rng.uniform(-0.2, 1.0) * width, rng.uniform(-0.2, 1.0) * height
        x1, y1 = x0 + rng.uniform(0.05, 0.6) * width, y0 + rng.uniform(0.05, 0.6) * height
        kind = rng.integers(0, 3)
        if kind == 0:
            draw.ellipse([x0, y0, x1, y1], fill=colour)
        elif kind == 1:
            draw.rectangle([x0, y0, x1, y1], fill=colour)
        else:
            points = [(rng.uniform(x0, x1), rng.uniform(y0, y1)) for _ in range(rng.integers(3, 7))]
            draw.polygon(points, fill=colour)
    # Fine grain, as sensor noise gives real photos high-frequency content.
    pixels = np.asarray(img, np.int16) + rng.normal(0, 16, (height, width, 3)).astype(np.int16)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), 'RGB')


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('root')
    p.add_argument('--classes', type=int, default=20)
    p.add_argument('--train', type=int, default=50, help='images per class in train/')
    p.add_argument('--val', type=int, default=10, help='images per class in val/')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--quality', type=int, default=90)
    a = p.parse_args()
    for name in ('classes', 'train', 'val'):
        if getattr(a, name) < (1 if name == 'classes' else 0):
            sys.exit(f'make-imagenet-folder: --{name} must be a {"positive" if name == "classes" else "non-negative"} integer, got {getattr(a, name)}')
    if not 1 <= a.quality <= 100:
        sys.exit(f'make-imagenet-folder: --quality must be in 1..100, got {a.quality}')
    wnids = [f'n{i:08d}' for i in range(a.classes)]
    written = 0
    for split, per_class in (('train', a.train), ('val', a.val)):
        for c, wnid in enumerate(wnids):
            folder = os.path.join(a.root, split, wnid)
            os.makedirs(folder, exist_ok=True)
            for k in range(per_class):
                # One generator per file: any one image can be regenerated alone, and the counts do not shift the others.
                rng = np.random.default_rng([a.seed, 0 if split == 'train' else 1, c, k])
                width, height = image_size(rng)
                name = f'{wnid}_{k}.JPEG' if split == 'train' else f'ILSVRC2012_val_{c * per_class + k + 1:08d}.JPEG'
                synthetic_image(rng, width, height).save(os.path.join(folder, name), quality=a.quality)
                written += 1
    print(f'wrote {written} images in {a.classes} classes under {a.root} (train {a.train}, val {a.val} per class)')


if __name__ == '__main__':
    main()
