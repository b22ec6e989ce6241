"""Checks on the real CIFAR-10 (JPEG copy from shared/data); skipped when it is not available."""
import json
import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def test_eoe_data_check_real_cifar10(real_data_root):
    r = subprocess.run([str(BIN / "eoe-data"), "check", "cifar10", "--json", "--data-root", str(real_data_root)],
                       capture_output=True, text=True, timeout=600, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert r.returncode == 0, r.stderr
    counts = json.loads(r.stdout)
    assert set(counts["train"].values()) == {5000} and set(counts["test"].values()) == {1000}
    assert list(counts["train"]) == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
