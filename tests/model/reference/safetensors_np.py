"""Minimal safetensors reader and writer in numpy (BF16, F16, F32).

Written from the safetensors format description, independent of opdev's C++ loader:

    [8 bytes]  N, little-endian u64: size of the JSON header
    [N bytes]  JSON: {"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, ...,
                      "__metadata__": {str: str}}   (offsets relative to the byte after the header)
    [rest]     tensor data, little-endian, row-major

BF16 values are kept as their uint16 bit patterns and widened exactly: the bf16 pattern is the top half
of the float32 with the same value, so (bits << 16) viewed as float32 is the exact value, and float32
-> float64 is exact too. F16 -> float64 is exact through numpy's float16.

Sharded checkpoints (model.safetensors.index.json with a weight_map) are read as one name -> tensor map.
"""
import json
import os
import struct

import numpy as np

# safetensors dtype name -> (numpy storage dtype, bytes per element)
_STORAGE = {
    "BF16": (np.dtype("<u2"), 2),
    "F16": (np.dtype("<f2"), 2),
    "F32": (np.dtype("<f4"), 4),
}

# Bound on the JSON header, as the reference implementation of safetensors does (100 MB): a corrupt
# length must not make us allocate gigabytes.
_MAX_HEADER = 100 * 1000 * 1000


class SafetensorsError(ValueError):
    pass


def bf16_bits_to_f32(bits):
    """uint16 bf16 patterns -> float32 with exactly the same values."""
    bits = np.asarray(bits, dtype=np.uint16)
    return (bits.astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16_bits(x):
    """float32 -> bf16 bit patterns, round to nearest, ties to even; NaN stays a (quiet) NaN."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    u = x.view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    out = rounded.astype(np.uint16)
    nan = np.isnan(x)
    if nan.any():
        out[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint16)
    return out


def round_to_bf16(x):
    """Round float32/float64 values to the nearest bf16 value (returned in x's float dtype).

    float64 input is first rounded to float32; double rounding can differ from a direct round only when
    the float32 lands exactly on a bf16 tie, which is harmless for how this is used (emulating rounding
    noise)."""
    x = np.asarray(x)
    dt = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
    return bf16_bits_to_f32(f32_to_bf16_bits(x.astype(np.float32))).astype(dt)


class SafetensorsFile:
    """One .safetensors file, memory-mapped; tensors are decoded on request."""

    def __init__(self, path):
        self.path = path
        size = os.path.getsize(path)
        if size < 8:
            raise SafetensorsError(f"{path}: {size} bytes, too short for a safetensors header")
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > _MAX_HEADER or 8 + n > size:
                raise SafetensorsError(f"{path}: header length {n} does not fit the file ({size} bytes)")
            header_bytes = f.read(n)
        try:
            header = json.loads(header_bytes.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise SafetensorsError(f"{path}: header is not valid JSON: {e}") from None
        if not isinstance(header, dict):
            raise SafetensorsError(f"{path}: header is not a JSON object")
        self.metadata = header.pop("__metadata__", None) or {}
        self.data_start = 8 + n
        data_len = size - self.data_start
        self.entries = {}
        for name, e in header.items():
            if not isinstance(e, dict) or not {"dtype", "shape", "data_offsets"} <= e.keys():
                raise SafetensorsError(f"{path}: tensor '{name}': entry needs dtype, shape, data_offsets")
            dtype = e["dtype"]
            if dtype not in _STORAGE:
                raise SafetensorsError(f"{path}: tensor '{name}': dtype {dtype} not supported "
                                       f"(supported: {', '.join(_STORAGE)})")
            shape = e["shape"]
            if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
                raise SafetensorsError(f"{path}: tensor '{name}': bad shape {shape}")
            offs = e["data_offsets"]
            if (not isinstance(offs, list) or len(offs) != 2 or not all(isinstance(o, int) for o in offs)
                    or not 0 <= offs[0] <= offs[1] <= data_len):
                raise SafetensorsError(f"{path}: tensor '{name}': data_offsets {offs} outside the "
                                       f"{data_len} data bytes")
            count = int(np.prod(shape, dtype=np.int64)) if shape else 1
            if count * _STORAGE[dtype][1] != offs[1] - offs[0]:
                raise SafetensorsError(f"{path}: tensor '{name}': shape {shape} of {dtype} needs "
                                       f"{count * _STORAGE[dtype][1]} bytes, offsets give {offs[1] - offs[0]}")
            self.entries[name] = (dtype, tuple(shape), offs[0], offs[1])
        self._mm = np.memmap(path, dtype=np.uint8, mode="r") if size > 0 else None

    def keys(self):
        return self.entries.keys()

    def dtype(self, name):
        return self.entries[name][0]

    def shape(self, name):
        return self.entries[name][1]

    def raw(self, name):
        """Stored values in their storage dtype (bf16 as uint16 bit patterns)."""
        dtype, shape, b, e = self.entries[name]
        st, _ = _STORAGE[dtype]
        buf = self._mm[self.data_start + b:self.data_start + e]
        return np.frombuffer(buf, dtype=st).reshape(shape)

    def get(self, name, dtype=np.float64):
        """The tensor's exact values as `dtype` (float64 is exact for every supported storage dtype)."""
        st = self.entries[name][0]
        r = self.raw(name)
        if st == "BF16":
            return bf16_bits_to_f32(r).astype(dtype)
        return r.astype(dtype)


class Checkpoint:
    """All tensors of a Hugging Face checkpoint directory: model.safetensors, or the shards named by
    model.safetensors.index.json."""

    def __init__(self, model_dir):
        self.files = {}
        self.where = {}
        index = os.path.join(model_dir, "model.safetensors.index.json")
        single = os.path.join(model_dir, "model.safetensors")
        if os.path.exists(index):
            with open(index) as f:
                weight_map = json.load(f).get("weight_map", {})
            for name, fname in weight_map.items():
                if fname not in self.files:
                    self.files[fname] = SafetensorsFile(os.path.join(model_dir, fname))
                if name not in self.files[fname].entries:
                    raise SafetensorsError(f"{index}: '{name}' mapped to {fname}, which lacks it")
                self.where[name] = self.files[fname]
        elif os.path.exists(single):
            st = SafetensorsFile(single)
            self.files["model.safetensors"] = st
            for name in st.keys():
                self.where[name] = st
        else:
            raise SafetensorsError(f"{model_dir}: neither model.safetensors nor model.safetensors.index.json")

    def __contains__(self, name):
        return name in self.where

    def keys(self):
        return self.where.keys()

    def get(self, name, dtype=np.float64):
        if name not in self.where:
            raise SafetensorsError(f"checkpoint lacks tensor '{name}'")
        return self.where[name].get(name, dtype)

    def storage_dtype(self, name):
        return self.where[name].dtype(name)


def save(path, tensors, dtype="BF16", metadata=None):
    """Write {name: array} as one safetensors file, every tensor stored as `dtype` (BF16, F16, F32).

    Values are rounded to the storage dtype (bf16: nearest even). Tensors are laid out in name order,
    the header is padded with spaces to a multiple of 8 bytes, as the Python safetensors library does."""
    if dtype not in _STORAGE:
        raise SafetensorsError(f"save: dtype {dtype} not supported")
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        a = np.asarray(tensors[name])
        if dtype == "BF16":
            data = f32_to_bf16_bits(a.astype(np.float32)).astype("<u2").tobytes()
        elif dtype == "F16":
            data = a.astype("<f2").tobytes()
        else:
            data = a.astype("<f4").tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * (-len(hb) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)
