"""Read the key/value header of a GGUF file without loading the model (and without extra packages).

Used to reject files that are not GGUF with a clear message before llama.cpp sees them, and to name the
model (`general.name`, quantization) in `PassProposer.identity`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

GGUF_MAGIC = b"GGUF"

# llama.cpp `llama_ftype` values -> the names people use for them.
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS",
    23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S",
    29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0", 37: "TQ2_0", 38: "MXFP4",
}

# GGUF value types: id -> struct format (scalars); 8 = string, 9 = array.
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


class NotGGUF(ValueError):
    pass


@dataclass
class GGUFInfo:
    version: int
    tensor_count: int
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def architecture(self) -> str | None:
        return self.metadata.get("general.architecture")

    @property
    def name(self) -> str | None:
        return self.metadata.get("general.name")

    @property
    def file_type(self) -> str | None:
        value = self.metadata.get("general.file_type")
        if value is None:
            return None
        return FILE_TYPES.get(int(value), f"ftype{value}")

    @property
    def context_length(self) -> int | None:
        arch = self.architecture
        value = self.metadata.get(f"{arch}.context_length") if arch else None
        return int(value) if value is not None else None


def _read(fp: BinaryIO, size: int) -> bytes:
    data = fp.read(size)
    if len(data) != size:
        raise NotGGUF("the file ends inside the GGUF header")
    return data


def _string(fp: BinaryIO) -> str:
    (length,) = struct.unpack("<Q", _read(fp, 8))
    if length > 1 << 30:
        raise NotGGUF("implausible string length in the GGUF header")
    return _read(fp, length).decode("utf-8", errors="replace")


def _value(fp: BinaryIO, vtype: int) -> Any:
    if vtype in _SCALARS:
        fmt = _SCALARS[vtype]
        return struct.unpack(fmt, _read(fp, struct.calcsize(fmt)))[0]
    if vtype == _STRING:
        return _string(fp)
    if vtype == _ARRAY:
        (item_type,) = struct.unpack("<I", _read(fp, 4))
        (count,) = struct.unpack("<Q", _read(fp, 8))
        if item_type in _SCALARS:
            size = struct.calcsize(_SCALARS[item_type]) * count
            fp.seek(size, 1)  # arrays (token scores, types) are skipped, not kept
            return None
        if item_type == _STRING:
            for _ in range(count):
                (length,) = struct.unpack("<Q", _read(fp, 8))
                fp.seek(length, 1)
            return None
        raise NotGGUF(f"unsupported GGUF array item type {item_type}")
    raise NotGGUF(f"unknown GGUF value type {vtype}")


def read_gguf_info(path: str | Path) -> GGUFInfo:
    """Parse the header and scalar/string metadata. Raises NotGGUF for anything that is not GGUF."""
    with open(path, "rb") as fp:
        magic = fp.read(4)
        if magic != GGUF_MAGIC:
            raise NotGGUF("the file does not start with the GGUF magic bytes")
        (version,) = struct.unpack("<I", _read(fp, 4))
        if version < 2:
            raise NotGGUF(f"GGUF version {version} is too old for llama.cpp")
        tensor_count, kv_count = struct.unpack("<QQ", _read(fp, 16))
        if kv_count > 1 << 20:
            raise NotGGUF("implausible metadata count in the GGUF header")
        info = GGUFInfo(version, tensor_count)
        for _ in range(kv_count):
            key = _string(fp)
            (vtype,) = struct.unpack("<I", _read(fp, 4))
            info.metadata[key] = _value(fp, vtype)
        return info
