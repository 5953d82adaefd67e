"""Concatenate every *.shard under DIR into one float32 .npy (rows x dim).

Shard layout (formats/src/codec.rs, formats/src/shard.rs): magic[8] | version u16 |
body_len u64 | body | crc32, body = header_len u32 | bincode header | rows*dim f32 LE
| optional u16 labels. The bincode header (fixed-width ints) starts with the 32-byte
model id, then dim u32 and rows u32.
"""
import pathlib, struct, sys, zlib
import numpy as np

def read_shard(path):
    b = pathlib.Path(path).read_bytes()
    assert b[:8] == b"FRUITSHD", path
    (body_len,) = struct.unpack_from("<Q", b, 10)
    body = memoryview(b)[18:18 + body_len]
    assert zlib.crc32(b[:18 + body_len]) == struct.unpack_from("<I", b, 18 + body_len)[0], path
    (hlen,) = struct.unpack_from("<I", body, 0)
    dim, rows = struct.unpack_from("<II", body, 4 + 32)
    return np.frombuffer(body, dtype="<f4", count=rows * dim, offset=4 + hlen).reshape(rows, dim)

if __name__ == "__main__":
    src, out = sys.argv[1], sys.argv[2]
    shards = sorted(pathlib.Path(src).rglob("*.shard"))
    x = np.concatenate([read_shard(p) for p in shards])
    np.save(out, x)
    print(f"{len(shards)} shards -> {out}: {x.shape} {x.dtype}")
