"""Engineering value <-> Modbus registers, exactly as a tag's address/type/order/scale says.

The simulator encodes (the inverse of what a driver decodes) and decodes the outputs the SCADA
wrote. Conventions a PLC analog card follows:

- scaled integers round to nearest and saturate at the type's limits;
- ``signal: ma_4_20``: ``raw_min``/``raw_max`` are the 4 and 20 mA counts; a healthy transmitter
  saturates at the NAMUR NE 43 measurement limits 3.8 / 20.5 mA; an open loop reads 3.5 mA worth of
  counts, a short 21.5 mA;
- a broken sensor on a non-4-20 tag reads the type's minimum (open) or maximum (short); a float reads
  NaN (open) or +inf (short).
"""

from __future__ import annotations

import math
import struct
from enum import StrEnum

from scada.config import ByteOrder, DataType, TagConfig, WordOrder

MA_OPEN = 3.5
MA_SHORT = 21.5
MA_UNDER = 3.8
MA_OVER = 20.5

_INT_LIMITS: dict[DataType, tuple[int, int]] = {
    DataType.INT16: (-32768, 32767),
    DataType.UINT16: (0, 65535),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.UINT32: (0, 2**32 - 1),
}
_STRUCT: dict[DataType, str] = {
    DataType.INT16: ">h", DataType.UINT16: ">H", DataType.INT32: ">i", DataType.UINT32: ">I",
    DataType.FLOAT32: ">f", DataType.FLOAT64: ">d",
}


class Signal(StrEnum):
    """Health of the wire between probe and PLC input card."""

    OK = "ok"
    OPEN = "open"
    SHORT = "short"


def ma_to_raw(tag: TagConfig, ma: float) -> float:
    """Counts of a 4-20 mA input for a loop current (``raw_min`` = 4 mA, ``raw_max`` = 20 mA)."""
    assert tag.scale is not None
    return tag.scale.raw_min + (ma - 4.0) / 16.0 * (tag.scale.raw_max - tag.scale.raw_min)


def eng_to_raw(tag: TagConfig, eng: float, signal: Signal = Signal.OK) -> float:
    """The raw number the PLC holds for an engineering value (before type conversion)."""
    if tag.signal == "ma_4_20" and tag.scale is not None:
        if signal is Signal.OPEN:
            return ma_to_raw(tag, MA_OPEN)
        if signal is Signal.SHORT:
            return ma_to_raw(tag, MA_SHORT)
        raw = tag.scale.to_raw(eng)
        lo, hi = sorted((ma_to_raw(tag, MA_UNDER), ma_to_raw(tag, MA_OVER)))
        return min(max(raw, lo), hi)
    dtype = tag.modbus.type if tag.modbus else DataType.FLOAT64
    if signal is not Signal.OK:
        if dtype in _INT_LIMITS:
            lo, hi = _INT_LIMITS[dtype]
            return float(lo if signal is Signal.OPEN else hi)
        return math.nan if signal is Signal.OPEN else math.inf
    return tag.scale.to_raw(eng) if tag.scale is not None else eng


def raw_to_eng(tag: TagConfig, raw: float) -> float:
    return tag.scale.to_eng(raw) if tag.scale is not None else raw


def pack(raw: float, dtype: DataType, word_order: WordOrder, byte_order: ByteOrder) -> list[int]:
    """Registers of one value (saturating integers; word order then byte order applied)."""
    if dtype in _INT_LIMITS:
        lo, hi = _INT_LIMITS[dtype]
        value: float | int = lo if math.isnan(raw) else int(min(max(round(raw), lo), hi)) if math.isfinite(raw) \
            else (hi if raw > 0 else lo)
    else:
        value = raw
    data = struct.pack(_STRUCT[dtype], value)
    regs = [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]
    if word_order is WordOrder.LITTLE:
        regs.reverse()
    if byte_order is ByteOrder.LITTLE:
        regs = [((r & 0xFF) << 8) | (r >> 8) for r in regs]
    return regs


def unpack(regs: list[int], dtype: DataType, word_order: WordOrder, byte_order: ByteOrder) -> float:
    """Inverse of :func:`pack`."""
    regs = list(regs)
    if byte_order is ByteOrder.LITTLE:
        regs = [((r & 0xFF) << 8) | (r >> 8) for r in regs]
    if word_order is WordOrder.LITTLE:
        regs.reverse()
    data = b"".join(int(r & 0xFFFF).to_bytes(2, "big") for r in regs)
    return float(struct.unpack(_STRUCT[dtype], data)[0])


def orders(tag: TagConfig, device_word: WordOrder, device_byte: ByteOrder) -> tuple[WordOrder, ByteOrder]:
    """Word and byte order of a tag (its own override, else the device's)."""
    assert tag.modbus is not None
    return tag.modbus.word_order or device_word, tag.modbus.byte_order or device_byte
