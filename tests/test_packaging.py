"""A wheel is complete: it carries the item notebooks and paper_numbers.csv (eoe_nb/papers_figures, found through
importlib.resources), and `eoe-figures` runs from it in a fresh virtual environment, away from the checkout."""
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from eoe_nb.testing import write_fake_cifar_pickles

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("setup.py", "settings.ini", "README.md", "LICENSE", "eoe_nb", "papers_figures")


def build_wheel(tmp: Path) -> Path:
    "The wheel of a copy of the checkout's sources (the build writes nothing into the checkout), built offline."
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        skip = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints")
        if (ROOT / name).is_dir(): shutil.copytree(ROOT / name, src / name, ignore=skip)
        else: shutil.copy(ROOT / name, src / name)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(tmp / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    (wheel,) = (tmp / "dist").glob("eoe_nb-*.whl")
    return wheel


def fresh_venv(tmp: Path, wheel: Path) -> Path:
    ("A new virtual environment holding the wheel alone; the dependencies (torch, papermill, ...) come from this "
     "interpreter's site-packages through a .pth line, so nothing is downloaded. The wheel is installed first, so "
     "pip does not see the checkout's editable install.")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    (Path(purelib) / "deps_from_test_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def test_wheel_ships_the_paper_notebooks_and_runs_eoe_figures_without_a_checkout(tmp_path):
    wheel = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"eoe_nb/papers_figures/{p.name}" for p in (ROOT / "papers_figures").iterdir()
               if p.suffix in (".ipynb", ".csv")}
    assert "eoe_nb/papers_figures/paper_numbers.csv" in shipped and len(shipped) >= 11
    assert shipped <= names, f"missing from the wheel: {sorted(shipped - names)}"
    assert any(n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE") for n in names)

    venv = fresh_venv(tmp_path, wheel)
    away = tmp_path / "elsewhere"                           # the working directory: no checkout in sight
    away.mkdir()
    write_fake_cifar_pickles(tmp_path / "data", n_train=100, n_test=100)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "EOE_PAPER_NUMBERS")}
    env.update(EOE_DATA=str(tmp_path / "data"), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1",
               PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import eoe_nb, eoe_nb.paper_items as p; "
                            "print(eoe_nb.__file__); print(p.default_notebooks_dir()); print(p._paper_numbers_path())"],
                           cwd=away, env=env, capture_output=True, text=True, timeout=120)
    assert where.returncode == 0, where.stderr[-3000:]
    module, nb_dir, numbers = map(Path, where.stdout.split())
    print(where.stdout, end="")
    assert venv in module.parents and ROOT not in module.parents              # the wheel's package, not the checkout
    assert nb_dir == module.parent / "papers_figures" and numbers == nb_dir / "paper_numbers.csv"

    r = subprocess.run([str(venv / "bin" / "eoe-figures"), "--scale", "smoke", "--only", "fewshot",
                        "--out", str(tmp_path / "out")], cwd=away, env=env, capture_output=True, text=True, timeout=900)
    print(r.stdout[-2000:])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    report = (tmp_path / "out" / "report.md").read_text()
    print("\n".join(line for line in report.splitlines() if "fewshot" in line or line.startswith("| ovr |")))
    assert (tmp_path / "out" / "executed" / "fewshot.ipynb").is_file() and "| fewshot |" in report
    assert "| ovr | cifar10 | HSC | 1 | done |" in report                      # a row that ran on the fake CIFAR-10
