"""Issue 19: `eoe-data check` decodes every image a data set reads from disk, as training does, for every kind of set:
a custom image folder (read from disk) and the CIFAR-10 image-folder copy (decoded into RAM and cached). The commands
run as subprocesses, as a user runs them: each undecodable file on one line, then one `error:` line, exit status 2."""
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from eoe_nb.datasets import CIFAR10_CLASSES
from eoe_nb.testing import write_fake_custom, write_fake_folder

BIN = Path(sys.executable).parent


def check(name: str, root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("EOE_DATA", None)
    return subprocess.run([str(BIN / "eoe-data"), "check", name, "--data-root", str(root)], capture_output=True,
                          text=True, env=env, timeout=300)


def truncated_jpeg(path: Path) -> Path:
    b = io.BytesIO()
    Image.fromarray(np.full((16, 16, 3), 50, np.uint8)).save(b, "JPEG")
    path.write_bytes(b.getvalue()[:len(b.getvalue()) // 2])
    return path


def test_custom_folder_symlink_to_text_and_truncated_jpeg(tmp_path):
    base = write_fake_custom(tmp_path, {"nut": 2, "bolt": 2}, test={"nut": 1, "bolt": 1})
    good = check("custom", tmp_path)
    assert good.returncode == 0 and good.stderr == "", good.stderr
    assert good.stdout.splitlines()[0].startswith("custom train: 4 images in 2 classes; source image folder")
    (tmp_path / "readme.txt").write_text("these are photos of nuts and bolts")
    link = base / "train" / "bolt" / "0007.jpg"
    link.symlink_to(tmp_path / "readme.txt")
    cut = truncated_jpeg(base / "train" / "nut" / "0008.jpg")
    r = check("custom", tmp_path)
    lines = r.stderr.splitlines()
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    assert [line.split(": ")[:2] for line in lines[:-1]] == [["unreadable", str(link)], ["unreadable", str(cut)]]
    assert "cannot identify image file" in lines[0] and "truncated" in lines[1].lower()
    assert lines[-1] == ("error: 2 unreadable image file(s) in custom train (listed above): restore them, or remove "
                         "them from the folder, and check again")
    link.unlink(); cut.unlink()
    assert check("custom", tmp_path).stdout == good.stdout


def test_cifar_image_folder_is_decoded_past_its_cache(tmp_path):
    for split in ("train", "test"):
        write_fake_folder(tmp_path / "cifar10-jpg", split, {c: 1 for c in CIFAR10_CLASSES}, size=8)
    assert check("cifar10", tmp_path).returncode == 0                     # decoded into RAM and cached
    f = tmp_path / "cifar10-jpg" / "test" / "dog" / "0000.png"
    st = f.stat()
    f.write_bytes(b"\0" * st.st_size)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))                       # same size and time: the cache still loads
    r = check("cifar10", tmp_path)
    assert r.returncode == 2 and r.stderr.splitlines()[0].startswith(f"unreadable: {f}: ")
    assert r.stderr.splitlines()[-1].startswith("error: 1 unreadable image file(s) in cifar10 test (listed above)")
