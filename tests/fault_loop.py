"""Fault loop: a tiny eoe-train run killed at random moments (SIGKILL, SIGTERM, SIGINT) 10 times, then finished, must end
with the same scores and metrics as an uninterrupted run, and no stray files.

Run: `python tests/fault_loop.py [--kills 10] [--seed 0]`; exits 0 when the results match (tests/test_results_folders.py runs it).
The package is imported once and every run is a forked process (the parent never computes with torch), so each start is fast.
"""
import argparse
import json
import multiprocessing
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from eoe_nb.cli import eoe_train_main
from eoe_nb.core import run_cli
from eoe_nb.testing import write_fake_cifar10_folder

METRICS = ("auroc", "ap", "fpr95", "n_train", "n_oe", "n_test", "attempts", "epochs", "normal_class", "seed")


def argv(data_root: Path, out: Path) -> list[str]:
    return ["--dataset", "cifar10[0-1]", "--oe", "cifar10[2-3]", "--objective", "hsc", "--model", "cnn32", "--epochs", "15",
            "--milestones", "10", "--batch-size", "8", "--seeds", "0", "--workers", "0", "--device", "cpu",
            "--data-root", str(data_root), "--out", str(out), "--no-plots", "--quiet"]


def _child(args: list[str]) -> None:
    import torch
    torch.set_num_threads(1)
    sys.stdout = sys.stderr = open(os.devnull, "w")
    os._exit(run_cli(eoe_train_main, args))


def start(args: list[str]):
    p = multiprocessing.get_context("fork").Process(target=_child, args=(args,))
    p.start()
    return p


def files(out: Path) -> set[str]:
    return {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}


def results(out: Path) -> dict:
    res = {}
    for d in sorted((out / "runs").iterdir()):
        r = json.loads((d / "result.json").read_text())
        with np.load(d / "scores.npz") as z: arrays = {k: z[k] for k in z.files}
        res[d.name] = ({k: r[k] for k in METRICS}, arrays)
    return res


def main(kills: int = 10, seed: int = 0) -> int:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as d:
        data = write_fake_cifar10_folder(Path(d) / "data", n_train=16, n_test=8)
        ref_out, out = Path(d) / "ref", Path(d) / "faulty"
        t0 = time.time(); p = start(argv(data, ref_out)); p.join()
        ref_seconds = time.time() - t0
        assert p.exitcode == 0, f"reference run failed ({p.exitcode})"
        sigs = [signal.SIGKILL, signal.SIGTERM, signal.SIGINT]
        log = []
        for k in range(kills):
            p = start(argv(data, out))
            delay = rng.uniform(0.05, ref_seconds / 2)   # each start warms up again (~3 s), then resumes where the last stopped
            p.join(delay)
            sig = sigs[k % 3]
            state = sorted(x.name for x in (out / "runs").glob("*/*") if x.name in ("checkpoint.pt", "result.json"))
            state = [f"{x.parent.name}/{x.name}" for x in (out / "runs").glob("*/*") if x.name in ("checkpoint.pt", "result.json")]
            if p.is_alive(): os.kill(p.pid, sig); p.join()
            log.append(f"{sig.name} after {delay:.2f} s (folder held {state or 'nothing yet'}): exit {p.exitcode}")
        t0 = time.time(); p = start(argv(data, out)); p.join()
        assert p.exitcode == 0, f"final run failed ({p.exitcode})"
        log.append(f"then finished in {time.time() - t0:.1f} s")
        stray = files(out) ^ files(ref_out)
        assert not stray, f"stray or missing files: {sorted(stray)}"
        ref, got = results(ref_out), results(out)
        assert ref.keys() == got.keys(), (ref.keys(), got.keys())
        for rid in ref:
            assert ref[rid][0] == got[rid][0], (rid, ref[rid][0], got[rid][0])
            assert ref[rid][1].keys() == got[rid][1].keys()
            for name, a in ref[rid][1].items(): assert np.array_equal(a, got[rid][1][name]), (rid, name)
        print("\n".join(log))
        print(f"fault loop: {kills} kills, then finished; results identical to the uninterrupted run "
              f"({ref_seconds:.1f} s), no stray files")
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=10); ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    sys.exit(main(a.kills, a.seed))
