"""Register codec: Modbus words <-> engineering values, with scaling, range checks and NE 43.

Pure functions and small frozen objects, no I/O: everything a driver needs to turn the 16-bit
registers (or bits) of one tag into a :class:`~scada.tags.Sample`, and an engineering value into
the registers to write. Word order (which register holds the high word) and byte order (which byte
of a register comes first) are set per device and may be overridden per tag; the four layouts are
ABCD (big/big), CDAB (word little), BADC (byte little) and DCBA (both little).

Reading never raises: a value that cannot be trusted becomes a Bad sample with the reason.
Writing never raises either: :func:`encode_write` returns an :class:`EncodeResult` that carries
the reason when the value is refused (not a number, outside ``limits``, does not fit the type).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from scada.config.base import Range
from scada.config.devices import ByteOrder, WordOrder
from scada.config.tags import DataType, Scale, TagConfig
from scada.tags import Quality, QualityReason, Sample, Value

_STRUCT: dict[DataType, str] = {
    DataType.INT16: ">h",
    DataType.UINT16: ">H",
    DataType.INT32: ">i",
    DataType.UINT32: ">I",
    DataType.FLOAT32: ">f",
    DataType.FLOAT64: ">d",
}

INT_RANGES: dict[DataType, tuple[int, int]] = {
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.UINT16: (0, 2**16 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.UINT32: (0, 2**32 - 1),
}
_FLOAT32_MAX = 3.4028234663852886e38

# NAMUR NE 43 bands in mA (see shared domain notes 5.1).
NE43_FAIL_LOW_MA = 3.6
NE43_MEAS_LOW_MA = 3.8
NE43_MEAS_HIGH_MA = 20.5
NE43_FAIL_HIGH_MA = 21.0


class CodecError(ValueError):
    """A value could not be encoded or decoded; the message names what was wrong."""


@dataclass(frozen=True, slots=True)
class Encoding:
    """How one value is laid out in registers."""

    type: DataType
    word_order: WordOrder = WordOrder.BIG
    byte_order: ByteOrder = ByteOrder.BIG
    bit: int | None = None

    @property
    def registers(self) -> int:
        return self.type.registers

    @property
    def layout(self) -> str:
        """ABCD / CDAB / BADC / DCBA, for logs and docs."""
        return {
            (WordOrder.BIG, ByteOrder.BIG): "ABCD",
            (WordOrder.LITTLE, ByteOrder.BIG): "CDAB",
            (WordOrder.BIG, ByteOrder.LITTLE): "BADC",
            (WordOrder.LITTLE, ByteOrder.LITTLE): "DCBA",
        }[(self.word_order, self.byte_order)]


def _swap_bytes(word: int) -> int:
    return ((word & 0xFF) << 8) | (word >> 8)


def _to_wire_order(words: list[int], enc: Encoding) -> list[int]:
    """Canonical big-endian words (high word first, high byte first) -> device layout. Self-inverse."""
    if enc.word_order is WordOrder.LITTLE:
        words = words[::-1]
    if enc.byte_order is ByteOrder.LITTLE:
        words = [_swap_bytes(w) for w in words]
    return words


def decode_words(words: Sequence[int], enc: Encoding) -> int | float | bool:
    """Registers as received -> raw value (int, float or bool). Raises :class:`CodecError`."""
    if enc.type is DataType.BOOL:
        raise CodecError("type 'bool' lives in a coil/discrete table, not in registers")
    need = enc.registers
    if len(words) != need:
        raise CodecError(f"{enc.type.value} needs {need} register(s), got {len(words)}")
    for w in words:
        if not 0 <= w <= 0xFFFF:
            raise CodecError(f"register value {w} is not a 16-bit word")
    canon = _to_wire_order(list(words), enc)
    if enc.type is DataType.BIT:
        return bool((canon[0] >> (enc.bit or 0)) & 1)
    data = b"".join(w.to_bytes(2, "big") for w in canon)
    return struct.unpack(_STRUCT[enc.type], data)[0]


def encode_words(raw: int | float | bool, enc: Encoding) -> list[int]:
    """Raw value -> registers in the device layout. Raises :class:`CodecError` if it does not fit."""
    if enc.type in (DataType.BOOL, DataType.BIT):
        raise CodecError(f"type {enc.type.value!r} is written as a coil or a masked register, not encoded")
    if enc.type in INT_RANGES:
        if isinstance(raw, float):
            if not math.isfinite(raw) or raw != int(raw):
                raise CodecError(f"raw value {raw!r} is not an integer for {enc.type.value}")
            raw = int(raw)
        lo, hi = INT_RANGES[enc.type]
        if not lo <= int(raw) <= hi:
            raise CodecError(f"raw value {raw} does not fit {enc.type.value} ({lo}..{hi})")
    elif enc.type is DataType.FLOAT32 and math.isfinite(raw) and abs(raw) > _FLOAT32_MAX:
        raise CodecError(f"raw value {raw!r} does not fit float32")
    data = struct.pack(_STRUCT[enc.type], raw)
    canon = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    return _to_wire_order(canon, enc)


def set_bit(word: int, bit: int, on: bool, byte_order: ByteOrder = ByteOrder.BIG) -> int:
    """Return the register with one bit set or cleared (for read-modify-write of a ``bit`` tag)."""
    canon = _swap_bytes(word) if byte_order is ByteOrder.LITTLE else word
    canon = canon | (1 << bit) if on else canon & ~(1 << bit) & 0xFFFF
    return _swap_bytes(canon) if byte_order is ByteOrder.LITTLE else canon


def ne43_ma(raw: float, scale: Scale) -> float:
    """Loop current in mA for a ``ma_4_20`` tag: ``raw_min`` is 4 mA and ``raw_max`` 20 mA."""
    return 4.0 + (raw - scale.raw_min) * 16.0 / (scale.raw_max - scale.raw_min)


@dataclass(frozen=True, slots=True)
class EncodeResult:
    """Outcome of converting one engineering value for writing. ``ok`` False carries ``reason``."""

    ok: bool
    words: tuple[int, ...] = ()
    bit: bool | None = None
    raw: float | int | bool | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class TagCodec:
    """Everything needed to decode and encode one Modbus tag (built once per driver)."""

    name: str
    encoding: Encoding
    scale: Scale | None = None
    limits: Range | None = None
    ma_4_20: bool = False

    @classmethod
    def for_tag(cls, tag: TagConfig, word_order: WordOrder, byte_order: ByteOrder) -> TagCodec:
        """The tag's own word/byte order wins over the device's."""
        if tag.modbus is None:
            raise CodecError(f"tag {tag.name!r} has no Modbus address")
        m = tag.modbus
        enc = Encoding(
            type=m.type,
            word_order=m.word_order or word_order,
            byte_order=m.byte_order or byte_order,
            bit=m.bit,
        )
        return cls(name=tag.name, encoding=enc, scale=tag.scale, limits=tag.limits, ma_4_20=tag.signal == "ma_4_20")

    @property
    def is_boolean(self) -> bool:
        return self.encoding.type.is_boolean

    def sample_from_bits(self, bit: bool, ts: float) -> Sample:
        return Sample(value=bool(bit), quality=Quality.GOOD, server_ts=ts, raw=float(bool(bit)))

    def block_decoder(self, offset: int) -> Callable[[Sequence[int], float], Sample]:
        """A decoder reading this tag at ``offset`` in a block of registers (the poll's hot path).

        Single-register integers in ABCD order (the common case) get a closure with the scaling
        constants folded in; everything else goes through :meth:`sample_from_words`.
        """
        enc = self.encoding
        if enc.type in (DataType.INT16, DataType.UINT16) and enc.byte_order is ByteOrder.BIG and not self.ma_4_20:
            signed = enc.type is DataType.INT16
            good = Quality.GOOD
            if self.scale is None:

                def plain(regs: Sequence[int], ts: float) -> Sample:
                    w = regs[offset]
                    if signed and w >= 0x8000:
                        w -= 0x10000
                    return Sample(w, good, ts, None, QualityReason.NONE, float(w))

                return plain
            sc = self.scale
            lo, hi = sorted((sc.raw_min, sc.raw_max))
            r0, e0, de, dr = sc.raw_min, sc.eng_min, sc.eng_max - sc.eng_min, sc.raw_max - sc.raw_min

            def scaled(regs: Sequence[int], ts: float) -> Sample:
                w = regs[offset]
                if signed and w >= 0x8000:
                    w -= 0x10000
                if lo <= w <= hi:
                    return Sample(e0 + (w - r0) * de / dr, good, ts, None, QualityReason.NONE, float(w))  # as Scale.to_eng
                return self.sample_from_raw(w, ts)

            return scaled
        width = max(enc.registers, 1)

        def generic(regs: Sequence[int], ts: float) -> Sample:
            return self.sample_from_words(regs[offset : offset + width], ts)

        return generic

    def sample_from_words(self, words: Sequence[int], ts: float) -> Sample:
        """Registers -> Sample. Never raises: what cannot be trusted is Bad with the reason."""
        try:
            raw = decode_words(words, self.encoding)
        except CodecError as e:
            return Sample.bad(QualityReason.DEVICE_FAILURE, ts, f"cannot decode: {e}")
        return self.sample_from_raw(raw, ts)

    def sample_from_raw(self, raw: int | float | bool, ts: float) -> Sample:
        if isinstance(raw, bool):
            return Sample(value=raw, quality=Quality.GOOD, server_ts=ts, raw=float(raw))
        if isinstance(raw, float):
            if math.isnan(raw):
                return Sample.bad(QualityReason.DEVICE_FAILURE, ts, "device sent NaN (check word/byte order)")
            if math.isinf(raw):
                return Sample(
                    value=None,
                    quality=Quality.BAD,
                    server_ts=ts,
                    reason=QualityReason.OUT_OF_RANGE,
                    raw=raw,
                    detail="device sent infinity (check word/byte order)",
                )
        value: float | int = raw if self.scale is None else self.scale.to_eng(raw)
        if self.scale is None:
            return Sample(value=value, quality=Quality.GOOD, server_ts=ts, raw=float(raw))
        if self.ma_4_20:
            return self._ne43(value, float(raw), ts)
        lo, hi = sorted((self.scale.raw_min, self.scale.raw_max))
        if not lo <= raw <= hi:
            return Sample(
                value=value,
                quality=Quality.BAD,
                server_ts=ts,
                reason=QualityReason.OUT_OF_RANGE,
                raw=float(raw),
                detail=f"raw {raw} outside scaling range {lo:g}..{hi:g}",
            )
        return Sample(value=value, quality=Quality.GOOD, server_ts=ts, raw=float(raw))

    def _ne43(self, value: float, raw: float, ts: float) -> Sample:
        """NAMUR NE 43 on the loop current (validation may apply it again; the verdict is the same)."""
        assert self.scale is not None
        ma = ne43_ma(raw, self.scale)
        quality, reason, detail = Quality.GOOD, QualityReason.NONE, ""
        if ma < NE43_FAIL_LOW_MA or ma > NE43_FAIL_HIGH_MA:
            quality, reason = Quality.BAD, QualityReason.SENSOR_FAILURE
            detail = f"NE 43 failure current {ma:.2f} mA"
        elif ma < NE43_MEAS_LOW_MA or ma > NE43_MEAS_HIGH_MA:
            quality, reason = Quality.BAD, QualityReason.OUT_OF_RANGE
            detail = f"NE 43 {ma:.2f} mA outside the measuring range 3.8..20.5 mA"
        elif ma < 4.0 or ma > 20.0:
            quality, reason = Quality.UNCERTAIN, QualityReason.SENSOR_NOT_ACCURATE
            detail = f"NE 43 {ma:.2f} mA saturated"
        return Sample(value=value, quality=quality, server_ts=ts, reason=reason, raw=raw, detail=detail)

    def encode_write(self, value: Value) -> EncodeResult:
        """Engineering value -> raw registers (or a bit). Refused, with the reason, when it cannot be written."""
        if value is None:
            return EncodeResult(False, reason="no value given")
        if self.is_boolean:
            if isinstance(value, bool) or value in (0, 1):
                return EncodeResult(True, bit=bool(value), raw=bool(value))
            return EncodeResult(False, reason=f"{value!r} is not a boolean (use true/false or 0/1)")
        if isinstance(value, bool):
            return EncodeResult(False, reason=f"a boolean cannot be written to a {self.encoding.type.value} tag")
        if not isinstance(value, int | float):
            return EncodeResult(False, reason=f"{value!r} is not a number")
        if not math.isfinite(value):
            return EncodeResult(False, reason=f"{value!r} is not a finite number")
        if self.limits is not None and not self.limits.contains(float(value)):
            return EncodeResult(False, reason=f"{value:g} outside limits {self.limits.min:g}..{self.limits.max:g}")
        raw: float | int = value if self.scale is None else self.scale.to_raw(float(value))
        if self.encoding.type in INT_RANGES:
            rounded = round(raw)
            if abs(raw - rounded) > 1e-6 * max(1.0, abs(raw)) and self.scale is None:
                return EncodeResult(False, reason=f"{value!r} is not an integer for {self.encoding.type.value}")
            raw = int(rounded)
        try:
            words = encode_words(raw, self.encoding)
        except (CodecError, OverflowError, struct.error) as e:
            return EncodeResult(False, raw=raw, reason=str(e))
        return EncodeResult(True, words=tuple(words), raw=raw)

    def matches(self, written: EncodeResult, sample: Sample) -> bool:
        """Read-back verification: does the value read equal the raw value written?"""
        if sample.quality is Quality.BAD or sample.raw is None:
            return False
        if written.bit is not None:
            return bool(sample.value) == written.bit
        assert written.raw is not None
        if self.encoding.type is DataType.FLOAT32:
            return math.isclose(sample.raw, float(written.raw), rel_tol=1e-6, abs_tol=1e-30)
        return sample.raw == float(written.raw)
