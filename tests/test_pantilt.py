"""app.pantilt with the real pantilthat library driving a fake I2C bus (the only faked part)."""
from __future__ import annotations

from pathlib import Path

import pytest

from app.camera.pantilt import PanTiltHat, open_pantilt
from config import PanTiltConfig

ADDRESS = 0x15
REG_CONFIG, REG_SERVO1, REG_SERVO2 = 0x00, 0x01, 0x03


class FakeBus:
    """The Pan-Tilt HAT's registers as an smbus-like object."""

    def __init__(self):
        self.registers: dict[int, int] = {}
        self.writes: list[tuple[str, int, object]] = []

    def write_byte_data(self, addr, reg, value):
        assert addr == ADDRESS
        self.registers[reg] = value
        self.writes.append(("byte", reg, value))

    def write_word_data(self, addr, reg, value):
        assert addr == ADDRESS
        self.registers[reg] = value
        self.writes.append(("word", reg, value))

    def read_word_data(self, addr, reg):
        assert addr == ADDRESS
        return self.registers.get(reg, 0)

    def write_i2c_block_data(self, addr, reg, data):
        self.writes.append(("block", reg, list(data)))


class AbsentBus(FakeBus):
    """A bus with nothing at the HAT's address: every transfer fails, as smbus reports it."""

    def write_byte_data(self, addr, reg, value):
        raise OSError(121, "Remote I/O error")

    write_word_data = write_i2c_block_data = write_byte_data

    def read_word_data(self, addr, reg):
        raise OSError(121, "Remote I/O error")


def test_move_drives_both_servos_and_reads_the_position_back():
    bus = FakeBus()
    hat = open_pantilt(PanTiltConfig(enabled="auto"), i2c_bus=bus)
    assert isinstance(hat, PanTiltHat)
    assert hat.move(45, -30) == (45, -30)
    assert hat.position() == (45, -30)
    assert 575 < bus.registers[REG_SERVO1] < 2325 and bus.registers[REG_SERVO2] < bus.registers[REG_SERVO1]
    assert bus.registers[REG_CONFIG] & 0b11 == 0b11  # both servos enabled
    assert hat.move(-90, 90) == (-90, 90)


@pytest.mark.parametrize("pan,tilt", [(91, 0), (0, -91), (1.5, 0), (True, 0), ("10", 0), (None, 0)])
def test_out_of_range_or_non_integer_angles_are_refused_before_any_write(pan, tilt):
    bus = FakeBus()
    hat = open_pantilt(PanTiltConfig(enabled="on"), i2c_bus=bus)
    before = list(bus.writes)
    with pytest.raises(ValueError):
        hat.move(pan, tilt)
    assert bus.writes == before


def test_close_stops_driving_the_servos():
    bus = FakeBus()
    hat = open_pantilt(PanTiltConfig(), i2c_bus=bus)
    hat.move(10, 10)
    hat.close()
    assert bus.registers[REG_CONFIG] & 0b11 == 0


def test_no_hat_disabled_or_no_i2c_gives_none(caplog):
    assert open_pantilt(PanTiltConfig(enabled="off"), i2c_bus=FakeBus()) is None
    assert open_pantilt(PanTiltConfig(enabled="on"), i2c_bus=AbsentBus()) is None
    assert "No pan-tilt HAT answering" in caplog.text
    caplog.clear()
    assert open_pantilt(PanTiltConfig(enabled="on"), i2c_bus=AbsentBus()) is None
    assert "No pan-tilt HAT" not in caplog.text  # said once, not at every retry


@pytest.mark.skipif(Path("/dev/i2c-1").exists(), reason="this machine has an I2C bus")
def test_off_a_pi_the_real_bus_is_missing_and_that_is_not_an_error():
    assert open_pantilt(PanTiltConfig(enabled="auto")) is None
