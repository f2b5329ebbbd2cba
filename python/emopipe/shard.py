"""Shard files, memory-mapped read-only. docs/cache-format.md is the format; Sources/EmoStore/Cache/
ShardFile.swift the Swift reader this one follows (every number in a file is checked before use).

A tensor is handed out as a read-only NumPy view on the mapping: nothing is copied.
"""
import mmap
import os
import stat
import struct
from dataclasses import dataclass

import numpy as np

from .crc32c import crc32c
from .errors import DamagedRecord, ShardError

MAGIC = b"EMOSHARD"
VERSION = 1
HEADER_SIZE = 64
ALIGNMENT = 64  # every tensor starts on such a boundary (ShardFormat.alignment)
MAX_RECORDS = 1 << 20  # ShardFormat.maxRecords: more than any writer puts in a shard
ENTRY_SIZE = 128
MAX_RANK = 6

# dtype code → NumPy type (little-endian), as EmoStore's DType numbers them.
DTYPES = {1: np.dtype("<f4"), 2: np.dtype("u1"), 3: np.dtype("<i4"), 4: np.dtype("<f8")}
DTYPE_NAMES = {1: "float32", 2: "uint8", 3: "int32", 4: "float64"}


@dataclass(frozen=True)
class Entry:
    """One index entry of a shard: where a record lies and its checksum."""
    key: str
    dtype: int
    shape: tuple
    crc32c: int
    meta_offset: int
    meta_length: int
    data_offset: int
    data_length: int


def _fits(offset, length, lower, upper):
    return lower <= offset <= upper and length <= upper - offset


class Shard:
    """One shard file, mapped read-only; its index is read and checked on opening."""

    def __init__(self, path, verify_index=True):
        self.path = path
        try:
            # O_NONBLOCK: a pipe in a shard's place must not block the open; anything but a file is refused.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            with os.fdopen(fd, "rb") as f:
                info = os.fstat(f.fileno())
                if not stat.S_ISREG(info.st_mode):
                    raise ShardError(path, "not a regular file")
                size = info.st_size
                if size < HEADER_SIZE:
                    raise ShardError(path, "shorter than its header")
                self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as error:
            raise ShardError(path, f"cannot open: {error.strerror or error}") from error
        except ValueError as error:
            # A path with a NUL byte in it (an edited index row): no file has such a name.
            raise ShardError(path, f"cannot open: {error}") from error
        self.size = size
        self.entries = self._read_index(verify_index)
        # A key indexed twice (a damaged index) is looked up where the SQLite index says it lies, else the first.
        self._by_place = {(e.key, e.data_offset): e for e in self.entries}
        self._by_key = {}
        for e in self.entries:
            self._by_key.setdefault(e.key, e)

    def _bad(self, why):
        return ShardError(self.path, why)

    def _read_index(self, verify):
        m = self._map
        if m[0:8] != MAGIC:
            raise self._bad("wrong magic")
        version, header_size, count, alignment, index_offset, index_length, index_crc = struct.unpack_from("<IIIIQQI", m, 8)
        if version != VERSION:
            raise self._bad(f"version {version}, this reader reads {VERSION}")
        if (header_size, alignment) != (HEADER_SIZE, ALIGNMENT):
            raise self._bad(f"header size {header_size} and alignment {alignment}; version {version} has {HEADER_SIZE} and {ALIGNMENT}")
        if count > MAX_RECORDS:
            raise self._bad(f"its header claims {count} records; a shard holds at most {MAX_RECORDS}")
        if index_length != count * ENTRY_SIZE or not _fits(index_offset, index_length, HEADER_SIZE, self.size):
            raise self._bad(f"index of {count} entries does not fit in {self.size} bytes")
        if index_offset + index_length != self.size:
            raise self._bad(f"{self.size - index_offset - index_length} bytes follow its index, which ends a shard")
        index = memoryview(m)[index_offset:index_offset + index_length]
        if verify and crc32c(index) != index_crc:
            raise self._bad("index fails its CRC-32C check")
        return [self._entry(index, i, index_offset) for i in range(count)]

    def _entry(self, index, i, records_end):
        at = i * ENTRY_SIZE
        key = bytes(index[at:at + 32]).hex()
        dtype, rank = index[at + 32], index[at + 33]
        if dtype not in DTYPES:
            raise self._bad(f"entry {i}: unknown dtype {dtype}")
        if rank > MAX_RANK:
            raise self._bad(f"entry {i}: rank {rank}")
        shape = struct.unpack_from(f"<{rank}I", index, at + 36)
        crc, meta_offset, meta_length, data_offset, data_length = struct.unpack_from("<IQQQQ", index, at + 60)
        # Records lie between the header and the index.
        if not (_fits(meta_offset, meta_length, HEADER_SIZE, records_end)
                and _fits(data_offset, data_length, HEADER_SIZE, records_end)):
            raise self._bad(f"entry {i} points outside the records")
        if data_offset % ALIGNMENT:
            raise self._bad(f"entry {i}: tensor offset {data_offset} is not a multiple of {ALIGNMENT}")
        expected = DTYPES[dtype].itemsize * int(np.prod(shape, dtype=object))
        if data_length != expected:
            raise self._bad(f"entry {i}: {data_length} bytes disagree with shape {list(shape)} of {DTYPE_NAMES[dtype]}")
        return Entry(key, dtype, tuple(shape), crc, meta_offset, meta_length, data_offset, data_length)

    def entry(self, key, data_offset=None):
        """The entry of `key` (at `data_offset`, when the SQLite index says where)."""
        found = self._by_key.get(key) if data_offset is None else self._by_place.get((key, data_offset))
        if found is None:
            elsewhere = data_offset is not None and key in self._by_key
            raise ShardError(self.path, f"no record for source {key}" + (f" at offset {data_offset}" if elsewhere else ""))
        return found

    def metadata_bytes(self, entry):
        return self._map[entry.meta_offset:entry.meta_offset + entry.meta_length]

    def metadata(self, entry):
        try:
            return bytes(self._map[entry.meta_offset:entry.meta_offset + entry.meta_length]).decode("utf-8")
        except UnicodeDecodeError as error:
            raise ShardError(self.path, f"record {entry.key}'s metadata is not UTF-8 ({error.reason})") from error

    def verify(self, entry):
        """Whether the record's metadata and tensor still match the CRC-32C written with them."""
        view = memoryview(self._map)
        crc = crc32c(view[entry.meta_offset:entry.meta_offset + entry.meta_length])
        crc = crc32c(view[entry.data_offset:entry.data_offset + entry.data_length], crc)
        return crc == entry.crc32c

    def array(self, entry, verify=False):
        """The tensor as a read-only NumPy array viewing the mapping (no copy)."""
        if verify and not self.verify(entry):
            raise DamagedRecord(self.path, entry.key)
        dtype = DTYPES[entry.dtype]
        flat = np.frombuffer(self._map, dtype=dtype, count=entry.data_length // dtype.itemsize, offset=entry.data_offset)
        return flat.reshape(entry.shape)


class ShardMaps:
    """Shards opened on first use and kept mapped, by path. Not carried across pickling (a DataLoader
    worker maps its own)."""

    def __init__(self):
        self._shards = {}

    def get(self, path):
        shard = self._shards.get(path)
        if shard is None:
            shard = self._shards[path] = Shard(path)
        return shard

    def __getstate__(self):
        return {}

    def __setstate__(self, state):
        self._shards = {}
