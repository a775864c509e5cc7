"""`pip install .` installs the shared contract, the companion and the technician tool as packages, so the
companion runs from any directory (pyproject's [tool.setuptools])."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _setuptools():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _source_folders(top, dotted):
    """Dotted names of top and every folder under it that holds Python files."""
    out = set()
    for path in top.rglob("*.py"):
        if "__pycache__" not in path.parts:
            rel = path.parent.relative_to(top)
            out.add(".".join((dotted, *rel.parts)))
    return out


def test_every_folder_of_the_installed_packages_is_listed():
    """Each folder with Python files under companion/, technician/ and firmware/interlock/ is a listed package
    (a folder left out would be missing from an installed companion)."""
    cfg = _setuptools()
    want = (_source_folders(ROOT / "companion", "companion") | _source_folders(ROOT / "technician", "technician")
            | _source_folders(ROOT / "firmware" / "interlock", "interlock") | _source_folders(ROOT / "presets", "presets"))
    assert set(cfg["packages"]) == want
    assert cfg["package-dir"] == {"interlock": "firmware/interlock"}


def test_the_data_files_the_companion_reads_at_run_time_are_installed():
    """alembic.ini and the migration script template travel with the companion package."""
    data = _setuptools()["package-data"]
    for package, patterns in data.items():
        folder = ROOT.joinpath(*package.split("."))
        for pattern in patterns:
            assert list(folder.glob(pattern)), (package, pattern)
    assert "alembic.ini" in data["companion"]
