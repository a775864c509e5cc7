"""firmware/manifest.py (MicroPython's freeze-manifest format) freezes every firmware file into a board build."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"


class Options:
    """The manifest's `options`: keyword arguments of include(), then its own defaults."""

    def __init__(self, **kwargs):
        self._kwargs = kwargs
        self._defaults = {}

    def defaults(self, **kwargs):
        self._defaults = kwargs

    def __getattr__(self, name):
        return self._kwargs.get(name, self._defaults.get(name))


def frozen(**kwargs):
    """(frozen firmware files, other things the manifest pulls in) as MicroPython's tools/manifestfile.py sees
    them: package(name) takes every .py under firmware/name, module(file) one file."""
    files, other = set(), []

    def package(name, files_=None, base_path=".", opt=None):
        assert files_ is None
        found = sorted(p.relative_to(FIRMWARE).as_posix() for p in (FIRMWARE / name).rglob("*.py"))
        assert found, name
        files.update(found)

    def module(name, base_path=".", opt=None):
        assert (FIRMWARE / name).is_file(), name
        files.add(name)

    env = {"options": Options(**kwargs), "package": package, "module": module,
           "require": lambda name, **kw: other.append(("require", name)),
           "include": lambda path, **kw: other.append(("include", path)),
           "freeze": lambda path, *a, **kw: other.append(("freeze", path))}
    exec(compile((FIRMWARE / "manifest.py").read_text(), "manifest.py", "exec"), env)
    return files, other


def firmware_files():
    return {p.relative_to(FIRMWARE).as_posix() for p in FIRMWARE.rglob("*.py")
            if "__pycache__" not in p.parts} - {"manifest.py"}


def test_board_build_freezes_every_firmware_file_and_the_ports_own():
    files, other = frozen()
    assert files == firmware_files()
    assert ("freeze", "$(PORT_DIR)/modules") in other  # the port's _boot.py: without it the board does not boot
    assert ("include", "$(MPY_DIR)/extmod/asyncio") in other
    assert ("require", "aioble-server") in other and ("require", "aioble-peripheral") in other  # BLE port


@pytest.mark.parametrize("kwargs", [{"board": False}])
def test_firmware_alone_leaves_out_the_entry_point_and_the_port(kwargs):
    files, other = frozen(**kwargs)
    assert files == firmware_files() - {"main.py"}
    assert other == []


def test_each_board_build_names_its_pin_map_and_freezes_it():
    """Both boards' pin maps are frozen, and the manifest says which board build uses which."""
    import ast

    files, _ = frozen()
    doc = ast.get_docstring(ast.parse((FIRMWARE / "manifest.py").read_text()))
    for build, pins in (("INTERLOCK_WROOM32 or ESP32_GENERIC ", "pins_wroom32.py"),
                        ("INTERLOCK_S3 or ESP32_GENERIC_S3", "pins_s3.py")):
        assert "drivers/esp32/" + pins in files
        assert any(build in line and pins in line for line in doc.splitlines()), (build, pins)
