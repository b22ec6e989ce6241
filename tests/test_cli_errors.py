"""Issue 10, the data side: `eoe-figures` refuses a data root that does not exist, `eoe-data check` lists every unreadable
image, and the caches of a shared data root are readable by others and skipped with one warning where they cannot be written.
The commands run as subprocesses, as a user runs them: one-line errors, exit status 2, no traceback."""
import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import eoe_nb.data as data
from eoe_nb.datasets import CIFAR10_CLASSES
from eoe_nb.testing import write_fake_folder

BIN = Path(sys.executable).parent


def run(*cmd: str, umask: int | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("EOE_DATA", None)
    pre = (lambda: os.umask(umask)) if umask is not None else None
    return subprocess.run([str(BIN / cmd[0]), *cmd[1:]], capture_output=True, text=True, env=env, timeout=300, preexec_fn=pre)


def fake_cifar(root: Path) -> Path:
    write_fake_folder(root / "cifar10-jpg", "train", {c: 2 for c in CIFAR10_CLASSES}, size=8)
    write_fake_folder(root / "cifar10-jpg", "test", {c: 1 for c in CIFAR10_CLASSES}, size=8)
    return root


def test_figures_refuses_missing_data_root(tmp_path):
    missing, out = tmp_path / "no-such-root", tmp_path / "figs"
    r = run("eoe-figures", "--data-root", str(missing), "--out", str(out))
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"error: data root {missing} does not exist") and "--data-root" in r.stderr and "$EOE_DATA" in r.stderr
    assert not out.exists()                                     # refused before anything is written


def test_data_check_lists_every_unreadable_file(tmp_path):
    root = fake_cifar(tmp_path)
    bad = sorted((root / "cifar10-jpg" / "test").rglob("*.png"))[2:5] + sorted((root / "cifar10-jpg" / "train").rglob("*.png"))[:1]
    for f in bad: f.write_bytes(b"not an image")
    r = run("eoe-data", "check", "cifar10", "--data-root", str(root))
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    assert sorted(l.split(": ")[1] for l in lines[:-1]) == sorted(str(f) for f in bad)
    assert all(l.startswith("unreadable: ") for l in lines[:-1])
    assert lines[-1] == ("error: 4 unreadable image file(s) in cifar10 train/test (listed above): restore them, "
                         "or remove them from the folder, and check again")


def test_data_check_verify_reads_sets_on_disk(tmp_path):
    "MVTec-AD is read from disk: `check --verify` opens every image and lists the broken ones."
    from eoe_nb.datasets import MVTEC_CLASSES
    from eoe_nb.testing import write_fake_mvtec
    base = write_fake_mvtec(tmp_path, MVTEC_CLASSES)
    bad = [sorted((base / "bottle" / "train").rglob("*.png"))[0], sorted((base / "zipper" / "test").rglob("*.png"))[0]]
    for f in bad: f.write_bytes(b"broken")
    r = run("eoe-data", "check", "mvtec", "--verify", "--data-root", str(tmp_path))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    assert sorted(l.split(": ")[1] for l in lines[:-1]) == sorted(map(str, bad)) and lines[-1].startswith("error: 2 unreadable image file(s) in mvtec")


def test_caches_readable_by_others(tmp_path):
    root = fake_cifar(tmp_path)
    r = run("eoe-data", "check", "cifar10", "--data-root", str(root), umask=0o022)
    assert r.returncode == 0, r.stderr
    caches = list((root / data.CACHE_DIR_NAME).iterdir())
    assert len(caches) == 2 and all(p.stat().st_mode & 0o777 == 0o644 for p in caches)
    assert (root / data.CACHE_DIR_NAME).stat().st_mode & 0o777 == 0o755


def test_cache_that_cannot_be_written_is_a_warning(tmp_path):
    root = fake_cifar(tmp_path)
    (root / data.CACHE_DIR_NAME).write_text("a file where the cache folder goes")     # blocks writes even for root
    r = run("eoe-data", "check", "cifar10", "--data-root", str(root), "--json")
    assert r.returncode == 0 and "Traceback" not in r.stderr
    warnings = [l for l in r.stderr.splitlines() if l.startswith("warning: cache ")]
    assert len(warnings) == 2 and all("not written" in w and "continuing without it" in w for w in warnings)   # one per split


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; the PermissionError case is simulated below")
def test_read_only_data_root(tmp_path):
    root = fake_cifar(tmp_path)
    os.chmod(root, 0o555)
    try: r = run("eoe-data", "check", "cifar10", "--data-root", str(root))
    finally: os.chmod(root, 0o755)
    assert r.returncode == 0 and "Traceback" not in r.stderr and "Permission denied" in r.stderr
    assert len([l for l in r.stderr.splitlines() if l.startswith("warning: cache ")]) == 2


def test_permission_error_on_cache_write(tmp_path, monkeypatch):
    "A cache write that raises PermissionError (another user's data root) is skipped with one warning line, every time it recurs."
    def deny(obj, path): raise PermissionError(13, "Permission denied", str(path))
    monkeypatch.setattr(data, "atomic_torch_save", deny)
    monkeypatch.setattr(data, "_CACHE_WARNED", set())
    build = lambda: data.ImageSet("toy", "train", ["a"], [0], images=torch.zeros(1, 1, 2, 2, dtype=torch.uint8))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        for _ in range(3): assert len(data.cached_in_memory(tmp_path, "toy", build, [])) == 1
    assert err.getvalue().count("\n") == 1 and err.getvalue().startswith("warning: cache ") and "Permission denied" in err.getvalue()


def test_unreadable_cache_file_is_rebuilt(tmp_path, monkeypatch):
    "A cache file that cannot be read or removed (written by another user) does not crash the load."
    build = lambda: data.ImageSet("toy", "train", ["a"], [0], images=torch.zeros(1, 1, 2, 2, dtype=torch.uint8))
    data.cached_in_memory(tmp_path, "toy", build, [])
    def deny(*a, **k): raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(data.torch, "load", deny)
    monkeypatch.setattr(Path, "unlink", deny)
    assert len(data.cached_in_memory(tmp_path, "toy", build, [])) == 1
