#!/usr/bin/env python3
"""Copies a fixture model directory and declares one routed-expert tensor of
its last MoE layer F8_E4M3 (its byte range shrunk to match, a
weight_scale_inv added), which the import accepts and packing cannot read:
  retype_expert.py SRC DST
Prints the tensor's name."""
import json
import os
import shutil
import struct
import sys

src, dst = sys.argv[1:3]
shutil.rmtree(dst, ignore_errors=True)
shutil.copytree(src, dst)
path = os.path.join(dst, "model.safetensors")
with open(path, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
    data = f.read()
experts = sorted(k for k in header if ".mlp.experts." in k and k.endswith("gate_proj.weight"))
name = experts[-1]
t = header[name]
elems = 1
for d in t["shape"]:
    elems *= d
t["dtype"] = "F8_E4M3"
t["data_offsets"][1] = t["data_offsets"][0] + elems
header[name + "_scale_inv"] = {"dtype": "F32", "shape": [1, 1],
                               "data_offsets": [len(data), len(data) + 4]}
data += struct.pack("<f", 1.0)
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
with open(path, "wb") as f:
    f.write(struct.pack("<Q", len(text)))
    f.write(text)
    f.write(data)
print(name)
