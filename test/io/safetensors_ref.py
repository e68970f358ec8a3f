#!/usr/bin/python3
"""Independent reference for advml's safetensors reader and writer.

Implements the safetensors format from its specification with struct, json and
PyTorch (Debian's python3-torch; the `safetensors` package is not needed), so
that advml's tests compare against a second implementation rather than against
themselves.

    safetensors_ref.py read FILE    parse FILE, check its layout, print its contents as JSON
    safetensors_ref.py write FILE   write tensors of several dtypes to FILE, print them as JSON

The JSON printed is {"metadata": {...}, "header_len": N, "checks": {...},
"tensors": {name: {"dtype": "F32", "shape": [...], "values": [...]}}} with
values flattened row-major; floats are numbers, or "nan" / "inf" / "-inf";
int64 values are decimal strings (JSON numbers lose precision past 2**53);
bool values are true/false; 16-bit floats are given as their exact float32 value.
"""
import json
import math
import struct
import sys

import torch

DTYPES = {
    "F64": (torch.float64, 8),
    "F32": (torch.float32, 4),
    "F16": (torch.float16, 2),
    "BF16": (torch.bfloat16, 2),
    "I64": (torch.int64, 8),
    "I32": (torch.int32, 4),
    "I16": (torch.int16, 2),
    "I8": (torch.int8, 1),
    "U8": (torch.uint8, 1),
    "BOOL": (torch.bool, 1),
}
NAMES = {dt: name for name, (dt, _) in DTYPES.items()}


def values_of(t):
    """Flattened row-major values of t as JSON-friendly Python values."""
    flat = t.reshape(-1)
    if t.dtype in (torch.float16, torch.bfloat16):
        flat = flat.float()
    out = []
    for v in flat.tolist():
        if isinstance(v, bool):
            out.append(v)
        elif isinstance(v, float):
            out.append("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else v)
        elif t.dtype == torch.int64:
            out.append(str(v))
        else:
            out.append(v)
    return out


def raw_bytes(t):
    """The row-major little-endian bytes of t (this host is little-endian)."""
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)  # numpy has no bfloat16; the bit patterns are what is stored
    return t.numpy().tobytes(order="C")


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    raw_header = data[8 : 8 + n]
    header = json.loads(raw_header.decode("utf-8"))
    body = data[8 + n :]
    metadata = header.pop("__metadata__", {})
    spans = sorted((info["data_offsets"][0], info["data_offsets"][1], name) for name, info in header.items())
    contiguous = True
    pos = 0
    for begin, end, _ in spans:
        contiguous = contiguous and begin == pos
        pos = end
    contiguous = contiguous and pos == len(body)
    aligned = all(info["data_offsets"][0] % DTYPES[info["dtype"]][1] == 0 for info in header.values())
    tensors = {}
    for name, info in header.items():
        dtype, size = DTYPES[info["dtype"]]
        shape = info["shape"]
        begin, end = info["data_offsets"]
        numel = math.prod(shape)
        assert end - begin == numel * size, f"{name}: {end - begin} bytes for shape {shape}"
        if numel == 0:
            t = torch.empty(shape, dtype=dtype)
        else:
            t = torch.frombuffer(bytearray(body[begin:end]), dtype=dtype).reshape(shape)
        tensors[name] = {"dtype": info["dtype"], "shape": shape, "values": values_of(t)}
    return {
        "metadata": metadata,
        "header_len": n,
        "checks": {
            "header_len_multiple_of_8": n % 8 == 0,
            "header_padding_is_spaces": raw_header.rstrip(b" ").endswith(b"}"),
            "data_contiguous": contiguous,
            "data_aligned": aligned,
        },
        "tensors": tensors,
    }


def reference_tensors():
    """Tensors of every dtype, with edge values, in a deliberately unsorted order."""
    g = torch.Generator().manual_seed(1234)
    x = torch.randn(3, 4, generator=g)
    return {
        "z.f32": torch.tensor([[0.0, -0.0, 1.5], [float("inf"), float("-inf"), float("nan")]], dtype=torch.float32),
        "a.bf16": (torch.randn(2, 3, 2, generator=g) * 100).to(torch.bfloat16),
        "m.f16": torch.tensor([1.0, -2.5, 65504.0, 6.1035e-05, 5.96e-08], dtype=torch.float16),
        "b.f64": torch.randn(5, generator=g, dtype=torch.float64),
        "c.i64": torch.tensor([0, -1, 2**62 + 12345, -(2**63), 2**63 - 1], dtype=torch.int64),
        "d.i32": torch.tensor([[-(2**31), 2**31 - 1], [7, -7]], dtype=torch.int32),
        "e.i16": torch.tensor([-32768, 32767, 3], dtype=torch.int16),
        "f.i8": torch.tensor([-128, 127, 0, -1], dtype=torch.int8),
        "g.u8": torch.tensor([0, 255, 128], dtype=torch.uint8),
        "h.bool": torch.tensor([[True, False], [False, True]]),
        "scalar": torch.tensor(3.25, dtype=torch.float32),
        "empty": torch.zeros(0, 3, dtype=torch.float32),
        # stored row-major although x.t() is a transposed view
        "transposed": x.t(),
        # channels-last in memory, row-major in the file
        "nhwc": torch.arange(24, dtype=torch.float32).reshape(1, 2, 3, 4).contiguous(memory_format=torch.channels_last),
    }


def write(path):
    tensors = reference_tensors()
    metadata = {"format": "pt", "writer": "safetensors_ref.py", "note": "ünïcode ✓"}
    header = {"__metadata__": metadata}
    chunks = []
    pos = 0
    for name, t in tensors.items():  # insertion order, not sorted: readers must not assume an order
        b = raw_bytes(t)
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [pos, pos + len(b)]}
        chunks.append(b)
        pos += len(b)
    # No padding to 8 bytes here, and a little whitespace: both are allowed.
    header_bytes = (json.dumps(header, ensure_ascii=False) + "   ").encode("utf-8")
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for c in chunks:
            f.write(c)
    return {
        "metadata": metadata,
        "header_len": len(header_bytes),
        "checks": {},
        "tensors": {
            name: {"dtype": NAMES[t.dtype], "shape": list(t.shape), "values": values_of(t)} for name, t in tensors.items()
        },
    }


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("read", "write"):
        sys.exit(__doc__)
    out = read(sys.argv[2]) if sys.argv[1] == "read" else write(sys.argv[2])
    json.dump(out, sys.stdout, allow_nan=False)


if __name__ == "__main__":
    main()
