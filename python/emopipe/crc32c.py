"""CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of shard records and indexes.

Pure Python and NumPy. Short inputs go byte by byte through a 256-entry table. Long inputs are cut
into many equal lanes whose CRCs NumPy computes side by side, then joined: a CRC register is linear
over GF(2), so the register after A then B is the register after A advanced over len(B) zero bytes,
XOR B's own; that advance is a 32x32 bit matrix, applied through four byte tables (cached per length:
records of one stage share their sizes).

    crc32c(b"123456789") == 0xE3069283
    crc32c(data, crc32c(metadata))   # continues, like the C library's crc32c_extend
"""
import functools

import numpy as np

POLYNOMIAL = 0x82F63B78
_MASK = 0xFFFFFFFF


def _byte_table():
    values = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        values = np.where(values & 1, (values >> 1) ^ np.uint32(POLYNOMIAL), values >> 1).astype(np.uint32)
    return values


TABLE = _byte_table()
_TABLE_LIST = [int(v) for v in TABLE]
# Below this many bytes the byte loop is cheaper than setting up lanes.
_LANE_THRESHOLD = 4096
_LANE_BYTES = 16
_MAX_LANES = 1 << 14
# Data longer than this is taken a piece at a time: the lanes hold about three copies of what they are given
# (a 1 GiB record claimed by a sparse shard took 3.1 GB).
_PIECE_BYTES = 32 << 20


def _as_bytes(data):
    """A flat uint8 view of bytes, bytearray, memoryview or any contiguous NumPy array (no copy)."""
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    return np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)


def _raw_small(register, data):
    """The register after feeding bytes, no pre- or post-inversion."""
    table = _TABLE_LIST
    for byte in data.tobytes():
        register = table[(register ^ byte) & 0xFF] ^ (register >> 8)
    return register


# A linear map on 32-bit registers is stored as its 32 columns: the images of 1 << i.
_BITS = np.arange(32, dtype=np.uint32)
_IDENTITY = np.uint32(1) << _BITS
_ONE_ZERO_BYTE = TABLE[_IDENTITY & 0xFF] ^ (_IDENTITY >> 8)


def _apply_by_bits(columns, registers):
    """The map applied to a few registers: the XOR of the columns of their set bits."""
    chosen = np.where((registers[:, None] >> _BITS) & 1, columns[None, :], np.uint32(0))
    return np.bitwise_xor.reduce(chosen, axis=1).astype(np.uint32)


def _compose(outer, inner):
    """outer after inner."""
    return _apply_by_bits(outer, inner)


@functools.lru_cache(maxsize=256)
def _advance_tables(count):
    """Byte tables of the map that feeds `count` zero bytes through a register (square and multiply):
    the map of a register is the XOR of its four bytes' table entries."""
    result, power = _IDENTITY, _ONE_ZERO_BYTE
    remaining = count
    while remaining:
        if remaining & 1:
            result = _compose(power, result)
        remaining >>= 1
        if remaining:
            power = _compose(power, power)
    byte_bits = (np.arange(256, dtype=np.uint32)[:, None] >> _BITS[:8]) & 1           # (256, 8)
    columns = result.reshape(4, 1, 8)                                                  # (byte, -, bit)
    tables = np.bitwise_xor.reduce(np.where(byte_bits[None], columns, np.uint32(0)), axis=2)
    return tables.astype(np.uint32)                                                    # (4, 256)


def _advance(count, registers):
    t = _advance_tables(count)
    r = registers.astype(np.uint32, copy=False)
    return t[0][r & 0xFF] ^ t[1][(r >> 8) & 0xFF] ^ t[2][(r >> 16) & 0xFF] ^ t[3][r >> 24]


def _raw_lanes(data):
    """The register after feeding `data` from zero, computed in parallel lanes."""
    n = data.size
    lanes = 1 << max(0, min((n // _LANE_BYTES).bit_length() - 1, _MAX_LANES.bit_length() - 1))
    length = -(-n // lanes)
    # Leading zero bytes leave a zero register at zero, so padding in front changes nothing.
    padded = np.zeros(lanes * length, dtype=np.uint8)
    padded[lanes * length - n:] = data
    columns = np.ascontiguousarray(padded.reshape(lanes, length).T)
    registers = np.zeros(lanes, dtype=np.uint32)
    for column in columns:
        registers = TABLE[(registers ^ column) & 0xFF] ^ (registers >> 8)
    span = length
    while registers.size > 1:
        registers = _advance(span, registers[0::2]) ^ registers[1::2]
        span *= 2
    return int(registers[0])


def crc32c(data, crc=0):
    """The CRC-32C of `data` (bytes-like or NumPy array), continuing from the CRC `crc` of what came before."""
    data = _as_bytes(data)
    if data.size > _PIECE_BYTES:
        for begin in range(0, data.size, _PIECE_BYTES):
            crc = crc32c(data[begin:begin + _PIECE_BYTES], crc)
        return crc
    start = (~crc) & _MASK
    if data.size < _LANE_THRESHOLD:
        return (~_raw_small(start, data)) & _MASK
    # From a non-zero start the register is the start advanced over the data XOR the data's own.
    advanced = int(_advance(data.size, np.array([start], dtype=np.uint32))[0])
    return (~(advanced ^ _raw_lanes(data))) & _MASK
