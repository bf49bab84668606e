"""Pure codec tests: every type in every word/byte order, scaling edges, NaN/inf, write refusals, NE 43."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.codec import CodecError, Encoding, TagCodec, decode_words, encode_words, ne43_ma, set_bit
from scada.config.devices import ByteOrder, WordOrder
from scada.config.tags import DataType, TagConfig
from scada.tags import Quality, QualityReason

ORDERS = {
    "ABCD": (WordOrder.BIG, ByteOrder.BIG),
    "CDAB": (WordOrder.LITTLE, ByteOrder.BIG),
    "BADC": (WordOrder.BIG, ByteOrder.LITTLE),
    "DCBA": (WordOrder.LITTLE, ByteOrder.LITTLE),
}


def enc(t: DataType, order: str = "ABCD", bit: int | None = None) -> Encoding:
    w, b = ORDERS[order]
    return Encoding(type=t, word_order=w, byte_order=b, bit=bit)


# Known wire images of 0x11223344 (uint32) in each layout: the textbook table.
@pytest.mark.parametrize(
    ("order", "words"),
    [("ABCD", [0x1122, 0x3344]), ("CDAB", [0x3344, 0x1122]), ("BADC", [0x2211, 0x4433]), ("DCBA", [0x4433, 0x2211])],
)
def test_uint32_layouts(order: str, words: list[int]) -> None:
    assert encode_words(0x11223344, enc(DataType.UINT32, order)) == words
    assert decode_words(words, enc(DataType.UINT32, order)) == 0x11223344
    assert enc(DataType.UINT32, order).layout == order


@pytest.mark.parametrize(
    ("order", "words"),
    [
        ("ABCD", [0x0102, 0x0304, 0x0506, 0x0708]),
        ("CDAB", [0x0708, 0x0506, 0x0304, 0x0102]),
        ("BADC", [0x0201, 0x0403, 0x0605, 0x0807]),
        ("DCBA", [0x0807, 0x0605, 0x0403, 0x0201]),
    ],
)
def test_float64_layouts(order: str, words: list[int]) -> None:
    value = struct.unpack(">d", bytes(range(1, 9)))[0]
    assert encode_words(value, enc(DataType.FLOAT64, order)) == words
    assert decode_words(words, enc(DataType.FLOAT64, order)) == value


def test_float32_known_value_matches_pymodbus_convention() -> None:
    # dependencies.md: 3.5 -> [16480, 0] big, [0, 16480] little word order
    assert encode_words(3.5, enc(DataType.FLOAT32, "ABCD")) == [16480, 0]
    assert encode_words(3.5, enc(DataType.FLOAT32, "CDAB")) == [0, 16480]


@pytest.mark.parametrize(
    ("t", "value", "words"),
    [
        (DataType.INT16, -1, [0xFFFF]),
        (DataType.INT16, -32768, [0x8000]),
        (DataType.INT16, 32767, [0x7FFF]),
        (DataType.UINT16, 65535, [0xFFFF]),
        (DataType.INT32, -123456, [0xFFFE, 0x1DC0]),
        (DataType.INT32, -(2**31), [0x8000, 0x0000]),
        (DataType.UINT32, 2**32 - 1, [0xFFFF, 0xFFFF]),
        (DataType.FLOAT32, -1.5, [0xBFC0, 0x0000]),
    ],
)
def test_negative_and_extreme_values_big_endian(t: DataType, value: float, words: list[int]) -> None:
    assert encode_words(value, enc(t)) == words
    assert decode_words(words, enc(t)) == value


@pytest.mark.parametrize("order", list(ORDERS))
@pytest.mark.parametrize(
    ("t", "value"),
    [(DataType.INT16, -2), (DataType.INT32, -70000), (DataType.FLOAT32, -273.15), (DataType.FLOAT64, -1e300)],
)
def test_negative_values_every_order(order: str, t: DataType, value: float) -> None:
    got = decode_words(encode_words(value, enc(t, order)), enc(t, order))
    assert got == pytest.approx(value, rel=1e-6)


@pytest.mark.parametrize(("t", "value"), [(DataType.INT16, 32768), (DataType.UINT16, -1), (DataType.INT32, 2**31),
                                          (DataType.UINT32, 2**32), (DataType.INT16, 1.5), (DataType.FLOAT32, 1e39)])
def test_encode_refuses_values_that_do_not_fit(t: DataType, value: float) -> None:
    with pytest.raises(CodecError):
        encode_words(value, enc(t))


def test_decode_wrong_register_count_and_bad_word() -> None:
    with pytest.raises(CodecError, match="needs 2"):
        decode_words([1], enc(DataType.FLOAT32))
    with pytest.raises(CodecError, match="16-bit"):
        decode_words([70000], enc(DataType.UINT16))


@pytest.mark.parametrize("order", ["ABCD", "BADC"])
def test_bit_in_register(order: str) -> None:
    word = 0b1000_0000_0000_0101 if order == "ABCD" else _swap(0b1000_0000_0000_0101)
    assert decode_words([word], enc(DataType.BIT, order, bit=0)) is True
    assert decode_words([word], enc(DataType.BIT, order, bit=1)) is False
    assert decode_words([word], enc(DataType.BIT, order, bit=15)) is True
    b = ORDERS[order][1]
    assert set_bit(word, 1, True, b) == (word | (1 << 1) if order == "ABCD" else _swap(0b1000_0000_0000_0111))
    assert set_bit(word, 15, False, b) == (0b101 if order == "ABCD" else _swap(0b101))


def _swap(w: int) -> int:
    return ((w & 0xFF) << 8) | (w >> 8)


_FLOATS32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


@given(value=st.integers(-(2**31), 2**31 - 1), order=st.sampled_from(list(ORDERS)))
def test_roundtrip_int32(value: int, order: str) -> None:
    assert decode_words(encode_words(value, enc(DataType.INT32, order)), enc(DataType.INT32, order)) == value


@given(value=st.integers(0, 2**32 - 1), order=st.sampled_from(list(ORDERS)))
def test_roundtrip_uint32(value: int, order: str) -> None:
    assert decode_words(encode_words(value, enc(DataType.UINT32, order)), enc(DataType.UINT32, order)) == value


@given(value=st.integers(-(2**15), 2**15 - 1), order=st.sampled_from(list(ORDERS)))
def test_roundtrip_int16(value: int, order: str) -> None:
    assert decode_words(encode_words(value, enc(DataType.INT16, order)), enc(DataType.INT16, order)) == value


@given(value=_FLOATS32, order=st.sampled_from(list(ORDERS)))
def test_roundtrip_float32(value: float, order: str) -> None:
    assert decode_words(encode_words(value, enc(DataType.FLOAT32, order)), enc(DataType.FLOAT32, order)) == value


@given(value=st.floats(allow_nan=False), order=st.sampled_from(list(ORDERS)))
def test_roundtrip_float64(value: float, order: str) -> None:
    assert decode_words(encode_words(value, enc(DataType.FLOAT64, order)), enc(DataType.FLOAT64, order)) == value


# --------------------------------------------------------------------------- tag level


def tag(**kw: object) -> TagConfig:
    base: dict[str, object] = {"name": "t.x", "device": "plc1"}
    base.update(kw)
    return TagConfig.model_validate(base)


def codec(**kw: object) -> TagCodec:
    return TagCodec.for_tag(tag(**kw), WordOrder.BIG, ByteOrder.BIG)


def test_tag_order_overrides_device_order() -> None:
    c = TagCodec.for_tag(
        tag(modbus={"table": "input", "address": 0, "type": "float32", "word_order": "little"}),
        WordOrder.BIG,
        ByteOrder.LITTLE,
    )
    assert c.encoding.word_order is WordOrder.LITTLE and c.encoding.byte_order is ByteOrder.LITTLE
    c2 = TagCodec.for_tag(tag(modbus={"table": "input", "address": 0, "type": "float32"}), WordOrder.LITTLE, ByteOrder.BIG)
    assert c2.encoding.layout == "CDAB"


SCALED = {"modbus": {"table": "holding", "address": 0, "type": "int16"}, "access": "read_write",
          "scale": {"raw_min": -1000, "raw_max": 1000, "eng_min": -50, "eng_max": 50}}


@pytest.mark.parametrize(("raw", "eng"), [(-1000, -50.0), (0, 0.0), (1000, 50.0), (-1, -0.05)])
def test_scaling_read_edges(raw: int, eng: float) -> None:
    s = codec(**SCALED).sample_from_words(encode_words(raw, enc(DataType.INT16)), 10.0)
    assert s.quality is Quality.GOOD and s.value == pytest.approx(eng) and s.raw == raw and s.server_ts == 10.0


def test_raw_outside_scaling_range_is_bad_out_of_range() -> None:
    s = codec(**SCALED).sample_from_words(encode_words(1001, enc(DataType.INT16)), 1.0)
    assert s.quality is Quality.BAD and s.reason is QualityReason.OUT_OF_RANGE
    assert "outside scaling range" in s.detail and s.raw == 1001


@pytest.mark.parametrize(("eng", "raw"), [(-50, -1000), (50, 1000), (12.34, 247), (-0.05, -1)])
def test_scaling_write(eng: float, raw: int) -> None:
    r = codec(**SCALED).encode_write(eng)
    assert r.ok and r.raw == raw and list(r.words) == encode_words(raw, enc(DataType.INT16))


def test_write_refused_when_raw_does_not_fit() -> None:
    r = codec(**SCALED).encode_write(1700.0)  # raw 34000 > int16
    assert not r.ok and "does not fit int16" in r.reason


def test_write_refused_outside_limits() -> None:
    c = codec(**SCALED, limits={"min": 0, "max": 40})
    assert c.encode_write(20).ok
    r = c.encode_write(41)
    assert not r.ok and "outside limits 0..40" in r.reason


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), None, "12", True])
def test_write_refuses_non_numbers(bad: object) -> None:
    r = codec(**SCALED).encode_write(bad)  # type: ignore[arg-type]
    assert not r.ok and r.reason


def test_unscaled_integer_write_refuses_fraction() -> None:
    c = codec(modbus={"table": "holding", "address": 0, "type": "uint16"}, access="read_write")
    assert c.encode_write(7).words == (7,)
    assert not c.encode_write(7.5).ok
    assert not c.encode_write(-1).ok


def test_bool_and_bit_writes() -> None:
    coil = codec(modbus={"table": "coil", "address": 3, "type": "bool"}, access="read_write")
    assert coil.encode_write(True).bit is True and coil.encode_write(0).bit is False
    assert not coil.encode_write(2).ok


@pytest.mark.parametrize(
    ("value", "reason"),
    [(float("nan"), QualityReason.DEVICE_FAILURE), (float("inf"), QualityReason.OUT_OF_RANGE),
     (float("-inf"), QualityReason.OUT_OF_RANGE)],
)
def test_nan_inf_read_is_bad(value: float, reason: QualityReason) -> None:
    c = codec(modbus={"table": "input", "address": 0, "type": "float32"})
    s = c.sample_from_words(encode_words(value, c.encoding), 1.0)
    assert s.quality is Quality.BAD and s.reason is reason and s.value is None


MA = {"modbus": {"table": "input", "address": 0, "type": "uint16"}, "signal": "ma_4_20",
      "scale": {"raw_min": 4000, "raw_max": 20000, "eng_min": 0, "eng_max": 100}}


@pytest.mark.parametrize(
    ("raw", "quality", "reason"),
    [
        (2000, Quality.BAD, QualityReason.SENSOR_FAILURE),
        (3599, Quality.BAD, QualityReason.SENSOR_FAILURE),
        (3700, Quality.BAD, QualityReason.OUT_OF_RANGE),
        (3900, Quality.UNCERTAIN, QualityReason.SENSOR_NOT_ACCURATE),
        (4000, Quality.GOOD, QualityReason.NONE),
        (12000, Quality.GOOD, QualityReason.NONE),
        (20000, Quality.GOOD, QualityReason.NONE),
        (20400, Quality.UNCERTAIN, QualityReason.SENSOR_NOT_ACCURATE),
        (20800, Quality.BAD, QualityReason.OUT_OF_RANGE),
        (21500, Quality.BAD, QualityReason.SENSOR_FAILURE),
    ],
)
def test_ne43_bands(raw: int, quality: Quality, reason: QualityReason) -> None:
    s = codec(**MA).sample_from_words([raw], 1.0)
    assert (s.quality, s.reason) == (quality, reason)
    assert s.raw == raw and s.value == pytest.approx((raw - 4000) / 160)
    assert ne43_ma(raw, codec(**MA).scale) == pytest.approx(raw / 1000)  # type: ignore[arg-type]


def test_readback_match() -> None:
    c = codec(modbus={"table": "holding", "address": 0, "type": "float32"}, access="read_write")
    w = c.encode_write(1.1)
    assert c.matches(w, c.sample_from_words(list(w.words), 1.0))
    assert not c.matches(w, c.sample_from_words(encode_words(1.2, c.encoding), 1.0))
    assert math.isfinite(c.sample_from_words(list(w.words), 1.0).value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kw",
    [
        {"modbus": {"table": "input", "address": 0, "type": "int16"}},
        {"modbus": {"table": "input", "address": 0, "type": "uint16"}},
        SCALED,
        {**SCALED, "modbus": {"table": "holding", "address": 0, "type": "uint16"}},
        {"modbus": {"table": "input", "address": 0, "type": "float32", "word_order": "little"}},
        {"modbus": {"table": "input", "address": 0, "type": "int16", "byte_order": "little"}},
        MA,
    ],
)
@given(words=st.lists(st.integers(0, 0xFFFF), min_size=6, max_size=6))
def test_block_decoder_equals_reference_path(kw: dict[str, object], words: list[int]) -> None:
    """The hot-path closures give exactly the samples of the general path."""
    c = codec(**kw)
    width = max(c.encoding.registers, 1)
    assert c.block_decoder(2)(words, 5.0) == c.sample_from_words(words[2 : 2 + width], 5.0)
