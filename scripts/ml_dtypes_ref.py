#!/usr/bin/env python3
"""Independent reference for the formats crate: ml_dtypes conversions.

Usage: ml_dtypes_ref.py DTYPE table          -> every code's value as little-endian f32 bits
       ml_dtypes_ref.py DTYPE encode IN OUT  -> IN: little-endian f32 values,
                                                OUT: codes (u8, or u16 LE for bfloat16/float16)
Called by crates/formats/tests/ml_dtypes.rs; it only converts, the Rust test compares.
"""
import sys

import numpy as np
import ml_dtypes

DTYPES = {
    "float4_e2m1fn": (ml_dtypes.float4_e2m1fn, 4),
    "float6_e2m3fn": (ml_dtypes.float6_e2m3fn, 6),
    "float6_e3m2fn": (ml_dtypes.float6_e3m2fn, 6),
    "float8_e4m3fn": (ml_dtypes.float8_e4m3fn, 8),
    "float8_e5m2": (ml_dtypes.float8_e5m2, 8),
    "float8_e8m0fnu": (ml_dtypes.float8_e8m0fnu, 8),
    "bfloat16": (ml_dtypes.bfloat16, 16),
    "float16": (np.float16, 16),
}


def main() -> None:
    name, mode = sys.argv[1], sys.argv[2]
    dtype, bits = DTYPES[name]
    store = np.uint16 if bits == 16 else np.uint8
    if mode == "table":
        codes = np.arange(1 << bits, dtype=store)
        vals = codes.view(dtype).astype(np.float32)
        sys.stdout.buffer.write(vals.astype("<f4").tobytes())
    elif mode == "encode":
        x = np.fromfile(sys.argv[3], dtype="<f4")
        with np.errstate(all="ignore"):
            y = x.astype(dtype).view(store)
        y.astype("<u2" if bits == 16 else "u1").tofile(sys.argv[4])
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
