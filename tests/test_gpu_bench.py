"""benchmarks/gpu_bench.py (issue 13) at its tiny size on the CPU, with the packages the GPU machine lacks blocked:
every part runs (CLIP skipped with a message), one JSON is written, the machine is printed. No timing is asserted."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ABSENT = ["open_clip", "papermill", "nbdev", "submitit", "deap", "sklearn", "scipy", "fastcore", "execnb"]

PRELUDE = f"""
import sys
for m in {ABSENT!r}: sys.modules[m] = None          # importing any of them now raises ImportError
import torch; torch.set_num_threads(1)
import runpy; sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_gpu_bench_tiny_on_cpu_without_missing_packages(tmp_path):
    out = tmp_path / "gpu.json"
    p = subprocess.run([sys.executable, "-c", PRELUDE, str(ROOT / "benchmarks" / "gpu_bench.py"), "--tiny", "--device", "cpu",
                        "--out", str(out)], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "EOE_DATA": str(tmp_path / "data")})
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads(out.read_text())
    assert set(r["epoch"]) == {"fp32", "bf16", "bf16+channels_last"}
    assert all(v["seconds_per_epoch"] > 0 for v in r["epoch"].values())
    assert set(r["packed"]) == {"1", "2"} and all(v["failed"] == 0 and v["images_per_second"] > 0 for v in r["packed"].values())
    assert r["grid"]["measured_epochs"] == 1 and "estimated" in r["grid"]["note"]
    assert r["clip"] == {"skipped": "open_clip is not installed"}
    assert "machine: " in p.stdout and "CIFAR-10 OvR HSC grid" in p.stdout and r["machine"]["cores"] >= 1
