#!/usr/bin/env python3
"""Replace a string inside the JSON header of a safetensors file, in place.

usage: edit_header.py FILE OLD NEW

OLD must occur exactly once in the header and NEW must have the same length,
so the header length and every data offset stay valid: only the edited
entry changes (a tensor's name, dtype or shape).
"""
import struct
import sys

path, old, new = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode()
if len(old) != len(new):
    sys.exit("edit_header.py: OLD and NEW differ in length")
with open(path, "r+b") as f:
    (n,) = struct.unpack("<Q", f.read(8))
    header = f.read(n)
    if header.count(old) != 1:
        sys.exit(f"edit_header.py: {old!r} occurs {header.count(old)} times "
                 f"in the header of {path}")
    f.seek(8)
    f.write(header.replace(old, new))
