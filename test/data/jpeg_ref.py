"""Reference for test/data/jpeg-native.test.ts, computed with Debian's PIL
(the decoder and resampler torchvision's ImageFolder pipeline uses).

    python3 jpeg_ref.py JOBS.json OUT.json

JOBS.json: {"make": [{"file": path, "mode": "CMYK" | "RGB" | "L", "width", "height", "progressive"}],
            "jobs": [{"file": path, "box": [left, top, width, height], "out": [width, height], "flip": bool}]}
"make" writes PIL-encoded JPEGs first (smooth colour ramps plus noise,
seeded). Each job opens the file, converts it to RGB (PIL's
convert('RGB')), crops the box, resizes it to "out" with BILINEAR (what
torchvision's RandomResizedCrop and Resize do on PIL images) and mirrors it
when "flip" is set. OUT.json: {"pixels": [hex of the HWC RGB bytes per job],
"pil": version}.
"""
import json
import random
import sys

import PIL
from PIL import Image, ImageOps


def make(spec):
    rnd = random.Random(spec["width"] * 131 + spec["height"])
    w, h = spec["width"], spec["height"]
    img = Image.new("RGB", (w, h))
    px = img.load()
    for y in range(h):
        for x in range(w):
            n = rnd.randrange(-40, 41)
            px[x, y] = (
                max(0, min(255, 255 * x // max(1, w - 1) + n)),
                max(0, min(255, 255 * y // max(1, h - 1) - n)),
                max(0, min(255, (x * y) % 256)),
            )
    img.convert(spec["mode"]).save(spec["file"], "JPEG", quality=90, progressive=bool(spec.get("progressive")))


def run(job):
    with Image.open(job["file"]) as im:
        img = im.convert("RGB")
    left, top, width, height = job["box"]
    img = img.crop((left, top, left + width, top + height))
    img = img.resize(tuple(job["out"]), Image.BILINEAR)
    if job.get("flip"):
        img = ImageOps.mirror(img)
    return img.tobytes().hex()


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    for m in spec.get("make", []):
        make(m)
    out = {"pixels": [run(j) for j in spec.get("jobs", [])], "pil": PIL.__version__}
    with open(sys.argv[2], "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
