"""The handset's own MicroPython board definitions (tools/board/): UART0 freed from the REPL for the service port.

No ESP-IDF here and no board build in CI: these check what can be checked without one. Each board exists with
the files MicroPython v1.27.0's ports/esp32 build reads (mpconfigboard.h and .cmake), turns the UART REPL off,
freezes firmware/manifest.py, keeps the generic board's sdkconfig fragments (and the S3's native-USB REPL), gives
a board name wiring.py maps to that board's pin map, and the README's build commands name it.
"""

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOARDS = ROOT / "tools" / "board"

# board dir -> (pin map wiring.py must pick, the generic board's sdkconfig fragments in v1.27.0, in order)
EXPECTED = {
    "INTERLOCK_S3": ("pins_s3", ["boards/sdkconfig.base", "boards/sdkconfig.ble", "boards/sdkconfig.spiram_sx",
                                 "${MICROPY_BOARD_DIR}/sdkconfig.board", "boards/sdkconfig.240mhz",
                                 "boards/sdkconfig.spiram_oct"]),
    "INTERLOCK_WROOM32": ("pins_wroom32", ["boards/sdkconfig.base", "boards/sdkconfig.ble"]),
}


def defines(text):
    """The #define NAME VALUE lines of a C header (comments dropped)."""
    text = re.sub(r"//[^\n]*", "", text)
    return dict(re.findall(r"^\s*#define\s+(\w+)\s+(.+?)\s*$", text, re.M))


def cmake_list(text, name):
    """The items of set(NAME ...) in a cmake file."""
    m = re.search(r"set\(\s*" + name + r"\b(.*?)\)", re.sub(r"#[^\n]*", "", text), re.S)
    assert m, name
    return m.group(1).split()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_board_definition_frees_uart0_and_freezes_the_firmware(name):
    d = BOARDS / name
    h = defines((d / "mpconfigboard.h").read_text())
    assert h["MICROPY_HW_ENABLE_UART_REPL"] == "(0)"
    cmake = (d / "mpconfigboard.cmake").read_text()
    manifest = cmake_list(cmake, "MICROPY_FROZEN_MANIFEST")
    assert manifest == ["${MICROPY_BOARD_DIR}/../../../firmware/manifest.py"]
    assert (d / "../../../firmware/manifest.py").resolve() == ROOT / "firmware" / "manifest.py"
    fragments = cmake_list(cmake, "SDKCONFIG_DEFAULTS")
    assert fragments == EXPECTED[name][1]
    for f in fragments:
        if f.startswith("${MICROPY_BOARD_DIR}/"):
            assert (d / f.split("/", 1)[1]).is_file(), f


def test_s3_keeps_its_repl_on_the_native_usb_and_its_generic_settings():
    h = defines((BOARDS / "INTERLOCK_S3" / "mpconfigboard.h").read_text())
    assert h["MICROPY_HW_USB_CDC"] == "(1)" and h["MICROPY_HW_ENABLE_USBDEV"] == "(1)"
    assert (h["MICROPY_HW_I2C0_SCL"], h["MICROPY_HW_I2C0_SDA"]) == ("(9)", "(8)")
    assert "set(IDF_TARGET esp32s3)" in (BOARDS / "INTERLOCK_S3" / "mpconfigboard.cmake").read_text()
    board = (BOARDS / "INTERLOCK_S3" / "sdkconfig.board").read_text().split()
    assert "CONFIG_ESPTOOLPY_FLASHMODE_QIO=y" in board and "CONFIG_ESPTOOLPY_FLASHFREQ_80M=y" in board


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_board_name_picks_its_pin_map(name, monkeypatch):
    """sys.implementation._machine on the build is "<MICROPY_HW_BOARD_NAME> with <MICROPY_HW_MCU_NAME>":
    wiring.board_pins() must give this board's map for it."""
    import importlib

    from tests.test_board_wiring import _Machine

    h = defines((BOARDS / name / "mpconfigboard.h").read_text())
    machine_name = h["MICROPY_HW_BOARD_NAME"].strip('"') + " with " + h["MICROPY_HW_MCU_NAME"].strip('"')
    monkeypatch.setitem(sys.modules, "machine", _Machine().module)
    monkeypatch.setattr(sys.implementation, "_machine", machine_name, raising=False)
    sys.modules.pop("drivers.esp32.wiring", None)
    try:
        wiring = importlib.import_module("drivers.esp32.wiring")
        assert wiring.PINS is not None and wiring.PINS.__name__.endswith("." + EXPECTED[name][0]), machine_name
    finally:
        sys.modules.pop("drivers.esp32.wiring", None)


def test_readme_build_commands_name_the_board_definitions():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Putting the firmware on a board"):]
    section = section[:section.index("\n## ", 10)]
    commands = [line.strip() for line in section.splitlines() if line.startswith("    make ")]
    assert any("BOARD_DIR=$ILK/tools/board/INTERLOCK_S3" in c and "deploy" not in c for c in commands), commands
    assert "INTERLOCK_WROOM32" in section and "MICROPY_HW_ENABLE_UART_REPL (0)" in section
    assert "FAULT_SERVICE_PORT" in section  # what a stock build does
