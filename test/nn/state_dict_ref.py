"""Reference for test/nn/state-dict.test.ts: loads a state dict saved by advml
into the matching torch.nn model (bench/peer.py defines them) with strict name
and shape checking, runs it on the input advml saved, and writes back
(1) its logits and (2) a transformed state dict (every float tensor t becomes
0.5 t + 0.25, integer buffers + 3) with the logits of that transformed model.

usage: state_dict_ref.py MODEL IN_WEIGHTS IN_INPUT OUT_FILE
"""
import json
import math
import os
import struct
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "io"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))
from safetensors_ref import DTYPES, NAMES, raw_bytes  # noqa: E402
from peer import MODELS  # noqa: E402


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    header.pop("__metadata__", None)
    body = data[8 + n :]
    out = {}
    for name, info in header.items():
        dtype, _ = DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        shape = info["shape"]
        if math.prod(shape) == 0:
            out[name] = torch.empty(shape, dtype=dtype)
        else:
            out[name] = torch.frombuffer(bytearray(body[begin:end]), dtype=dtype).reshape(shape).clone()
    return out


def save(path, tensors):
    header, chunks, pos = {}, [], 0
    for name, t in tensors.items():
        b = raw_bytes(t)
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [pos, pos + len(b)]}
        chunks.append(b)
        pos += len(b)
    hb = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb + b"".join(chunks))


def main():
    model_name, weights, inputs, out_path = sys.argv[1:5]
    cls, _ = MODELS[model_name]
    model = cls().to(torch.float64)
    state = load(weights)
    model.load_state_dict(state, strict=True)  # raises on any name or shape mismatch
    model.eval()
    x = load(inputs)["x"]
    with torch.no_grad():
        logits = model(x)
        transformed = {
            k: (v * 0.5 + 0.25 if v.is_floating_point() else v + 3) for k, v in model.state_dict().items()
        }
        model.load_state_dict(transformed, strict=True)
        logits2 = model(x)
    save(out_path, {"logits": logits, "logits_transformed": logits2, **{f"state.{k}": v for k, v in transformed.items()}})


if __name__ == "__main__":
    main()
