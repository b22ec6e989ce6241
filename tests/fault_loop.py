"""Fault loop: a tiny run of a command killed at random moments (SIGKILL, SIGTERM, SIGINT) 10 times, then finished, must end
with the same results as an uninterrupted run, and no stray files (no stale temporaries, nothing missing).

Commands: `train` (eoe-train: scores and metrics), `oe` (eoe-oe train: the classifier's weights and its training log) and
`search` (eoe-search: the genealogy, logbook and table of a small evolutionary search and every fitness run's AUROC).

Run: `python tests/fault_loop.py [--command train|oe|search] [--kills 10] [--seed 0]`; exits 0 when the results match
(tests/test_results_folders.py and tests/test_run_layer.py run it). The package is imported once and every run is a forked
process (the parent never computes with torch), so each start is fast.
"""
import argparse
import csv
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
from eoe_nb.oe_cli import eoe_oe_main
from eoe_nb.search_cli import eoe_search_main
from eoe_nb.testing import write_fake_cifar10_folder

METRICS = ("auroc", "ap", "fpr95", "n_train", "n_oe", "n_test", "attempts", "epochs", "normal_class", "seed")
COMMON = ["--device", "cpu", "--quiet"]


def train_argv(data_root: Path, out: Path) -> list[str]:
    return ["--dataset", "cifar10[0-1]", "--oe", "cifar10[2-3]", "--objective", "hsc", "--model", "cnn32", "--epochs", "15",
            "--milestones", "10", "--batch-size", "8", "--seeds", "0", "--workers", "0", "--data-root", str(data_root),
            "--out", str(out), "--no-plots", *COMMON]


def oe_argv(data_root: Path, out: Path) -> list[str]:
    return ["train", "--dataset", "cifar10[0-4]", "--phase", "oe_scratch", "--oe", "cifar10[5-7]", "--model", "cnn32_classifier",
            "--epochs", "12", "--lr", "0.05", "--batch-size", "16", "--oe-batch-size", "32", "--data-root", str(data_root),
            "--out", str(out), *COMMON]


def search_argv(data_root: Path, out: Path) -> list[str]:
    return ["--dataset", "cifar10[0-1]", "--oe", "cifar10[2-3]", "--classes", "0", "--population", "2", "--generations", "4",
            "--mutation-pool", "6", "--mutation-k", "2", "--duplicate-distance", "0", "--tournament-size", "2", "--epochs", "2",
            "--milestones", "--seeds", "0", "--batch-size", "8", "--workers", "0", "--preset", "cifar10",
            "--transform", "noaug_cifar10", "--data-root", str(data_root), "--out", str(out), *COMMON]


def train_results(out: Path) -> dict:
    res = {}
    for d in sorted((out / "runs").iterdir()):
        r = json.loads((d / "result.json").read_text())
        with np.load(d / "scores.npz") as z: arrays = {k: z[k] for k in z.files}
        res[d.name] = ({k: r[k] for k in METRICS}, arrays)
    return res


def oe_results(out: Path) -> dict:
    import torch
    weights = torch.load(out / "final.pt", map_location="cpu", weights_only=True)["model"]
    # times and the `call` that trained each epoch differ by design between the interrupted and the uninterrupted run
    log = [{k: v for k, v in r.items() if k not in ("seconds", "call")}
           for r in csv.DictReader(open(out / "train_log.csv"))]
    return {"log": (log, {}), "weights": ({}, {k: v.numpy() for k, v in weights.items()})}


def search_results(out: Path) -> dict:
    state = json.loads((out / "search_state.json").read_text())
    fitness = {str(p.relative_to(out)): json.loads(p.read_text())["auroc"] for p in sorted(out.glob("fitness_*/*/runs/*/result.json"))}
    genealogy = [dict(c, rng=None) for c in state["classes"]]
    return {"genealogy": ((genealogy, state["generation"], state["done"]), {}), "fitness": (fitness, {}),
            "table": ((out / "table.csv").read_text(), {})}


COMMANDS = {"train": (eoe_train_main, train_argv, train_results), "oe": (eoe_oe_main, oe_argv, oe_results),
            "search": (eoe_search_main, search_argv, search_results)}


def _child(command: str, args: list[str]) -> None:
    import torch
    signal.signal(signal.SIGINT, signal.default_int_handler)   # also where the parent ignores SIGINT (a background job)
    torch.set_num_threads(1)
    sys.stdout = sys.stderr = open(os.devnull, "w")
    os._exit(run_cli(COMMANDS[command][0], args))


def start(command: str, args: list[str]):
    p = multiprocessing.get_context("fork").Process(target=_child, args=(command, args))
    p.start()
    return p


def files(out: Path) -> set[str]:
    return {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}


def compare(ref: dict, got: dict) -> None:
    assert ref.keys() == got.keys(), (ref.keys(), got.keys())
    for key in ref:
        assert ref[key][0] == got[key][0], (key, ref[key][0], got[key][0])
        assert ref[key][1].keys() == got[key][1].keys()
        for name, a in ref[key][1].items(): assert np.array_equal(a, got[key][1][name]), (key, name)


def main(command: str = "train", kills: int = 10, seed: int = 0) -> int:
    _, make_argv, read_results = COMMANDS[command]
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as d:
        data = write_fake_cifar10_folder(Path(d) / "data", n_train=16, n_test=8)
        ref_out, out = Path(d) / "ref", Path(d) / "faulty"
        t0 = time.time(); p = start(command, make_argv(data, ref_out)); p.join()
        ref_seconds = time.time() - t0
        assert p.exitcode == 0, f"reference run failed ({p.exitcode})"
        sigs = [signal.SIGKILL, signal.SIGTERM, signal.SIGINT]
        log = []
        for k in range(kills):
            p = start(command, make_argv(data, out))
            delay = rng.uniform(0.05, ref_seconds / 2)   # each start warms up again (~3 s), then resumes where the last stopped
            p.join(delay)
            sig = sigs[k % 3]
            if p.is_alive(): os.kill(p.pid, sig); p.join()
            log.append(f"{sig.name} after {delay:.2f} s: exit {p.exitcode}")
        t0 = time.time(); p = start(command, make_argv(data, out)); p.join()
        assert p.exitcode == 0, f"final run failed ({p.exitcode})"
        log.append(f"then finished in {time.time() - t0:.1f} s")
        stray = files(out) ^ files(ref_out)
        assert not stray, f"stray or missing files: {sorted(stray)}"
        compare(read_results(ref_out), read_results(out))
        print("\n".join(log))
        print(f"fault loop ({command}): {kills} kills, then finished; results identical to the uninterrupted run "
              f"({ref_seconds:.1f} s), no stray files")
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--command", choices=sorted(COMMANDS), default="train")
    ap.add_argument("--kills", type=int, default=10); ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    sys.exit(main(a.command, a.kills, a.seed))
