#!/usr/bin/env python3
"""Compare the tensors an imported kt module references with a checkpoint.

usage: check_tensors.py MODEL_DIR IR_FILE

Reads every #kt.weight<"name", dtype, [shape], "file"> of the IR and the
module's kt.extra_tensors list, and the safetensors headers of MODEL_DIR
(model.safetensors, or the files of model.safetensors.index.json). Checks
that
  - every referenced tensor exists, in the file the weight names, with the
    same dtype and shape;
  - referenced tensors and extra tensors are disjoint, and together are
    exactly the checkpoint's tensors.
Prints one summary line and exits 1 with a message per problem otherwise.
"""
import json
import os
import re
import struct
import sys

DTYPES = {"F64": "f64", "F32": "f32", "F16": "f16", "BF16": "bf16",
          "F8_E4M3": "f8E4M3FN", "F8_E5M2": "f8E5M2", "I64": "i64",
          "I32": "i32", "I16": "i16", "I8": "i8", "U8": "ui8", "BOOL": "i1"}


def header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        h = json.loads(f.read(n))
    h.pop("__metadata__", None)
    return h


def checkpoint(model_dir):
    index = os.path.join(model_dir, "model.safetensors.index.json")
    files = []
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    tensors = {}
    for name in files:
        for t, info in header(os.path.join(model_dir, name)).items():
            tensors[t] = (name, DTYPES.get(info["dtype"], info["dtype"]),
                          list(info["shape"]))
    return tensors


WEIGHT = re.compile(r'#kt\.weight<"([^"]*)", ([^,]+), \[([^\]]*)\], "([^"]*)">')
EXTRA = re.compile(r'kt\.extra_tensors = \[([^\]]*)\]')


def main():
    model_dir, ir_file = sys.argv[1], sys.argv[2]
    with open(ir_file) as f:
        ir = f.read()
    ckpt = checkpoint(model_dir)
    problems = []
    referenced = {}
    for name, dtype, shape, file in WEIGHT.findall(ir):
        dims = [int(d) for d in shape.split(",") if d.strip()]
        referenced.setdefault(name, set()).add((file, dtype, tuple(dims)))
    for name, uses in sorted(referenced.items()):
        if name not in ckpt:
            problems.append(f"'{name}' is referenced but not in the checkpoint")
            continue
        file, dtype, shape = ckpt[name]
        for use in sorted(uses):
            if use != (file, dtype, tuple(shape)):
                problems.append(f"'{name}' referenced as {use}, checkpoint has "
                                f"{(file, dtype, tuple(shape))}")
    m = EXTRA.search(ir)
    extra = set(re.findall(r'"([^"]*)"', m.group(1))) if m else set()
    for name in sorted(extra & set(referenced)):
        problems.append(f"'{name}' is both referenced and listed as extra")
    for name in sorted(extra - set(ckpt)):
        problems.append(f"'{name}' is listed as extra but not in the checkpoint")
    for name in sorted(set(ckpt) - set(referenced) - extra):
        problems.append(f"'{name}' is in the checkpoint but neither referenced "
                        f"nor listed as extra")
    for p in problems:
        print("error: " + p)
    print(f"tensors: checkpoint {len(ckpt)}, referenced {len(referenced)}, "
          f"extra {len(extra)}, problems {len(problems)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
