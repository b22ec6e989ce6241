"""The exported package and the cleaned notebooks are in sync with the notebooks (what CI checks)."""
import filecmp
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _diff(a: Path, b: Path, rel=Path(".")) -> list[str]:
    cmp = filecmp.dircmp(a, b, ignore=["__pycache__", ".ipynb_checkpoints"])
    out = [str(rel / n) for n in cmp.left_only + cmp.right_only + cmp.diff_files]
    for sub in cmp.common_dirs: out += _diff(a / sub, b / sub, rel / sub)
    return out


def test_export_and_clean_change_nothing(tmp_path):
    for name in ("nbs", "eoe_nb"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    for name in ("settings.ini", "setup.py", "README.md"): shutil.copy(ROOT / name, tmp_path / name)
    for cmd in ("nbdev_export", "nbdev_clean"):
        r = subprocess.run([str(BIN / cmd)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"{cmd} failed: {r.stderr[-2000:]}"
    changed = _diff(ROOT / "nbs", tmp_path / "nbs", Path("nbs")) + _diff(ROOT / "eoe_nb", tmp_path / "eoe_nb", Path("eoe_nb"))
    assert not changed, f"run nbdev_export and nbdev_clean, then commit; these files change: {changed}"
