"""The `eoe-oe` command (issue 11): fast --help, one-line errors before anything is written, an end-to-end baseline ->
OE fine-tune -> test -> calibrate on a fake CIFAR-10 in its real format that resumes without redoing, a grid through the
experiments' executor, and the smoke scale of the two OE paper items."""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from eoe_nb.core import run_cli
from eoe_nb.folders import read_json_file
from eoe_nb.oe_cli import eoe_oe_main
from eoe_nb.oe_runs import CALIBRATION_JSON, OOD_RESULTS_JSON, OEExperiment, run_oe_experiment
from eoe_nb.oe_items import oe_item_plan, oe_results_table, run_oe_item, write_oe_item_outputs
from eoe_nb.paper_items import ResultRow, RowStatus
from eoe_nb.testing import capture_cli, write_fake_cifar_pickles

HEAVY = ("sklearn", "matplotlib", "scipy", "open_clip", "papermill", "eoe_nb.oe_train", "eoe_nb.oe_eval")


def main(argv): return run_cli(eoe_oe_main, argv)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    torch.set_num_threads(1)
    from eoe_nb.oe_train import register_tiny_classifier
    register_tiny_classifier()
    r = tmp_path_factory.mktemp("oe")
    write_fake_cifar_pickles(r / "data", n_train=250, n_test=600)
    return r


def train_args(root, *extra):
    return ["--model", "tiny_classifier", "--epochs", "1", "--batch-size", "16", "--oe-batch-size", "32", "--val-share", "0.1",
            "--device", "cpu", "--data-root", str(root / "data"), "--quiet", *extra]


def eval_args(root, *extra):
    return ["--no-official", "--ood", "cifar10[8-9]", "Gaussian", "--draws", "3", "--test-limit", "300", "--device", "cpu",
            "--data-root", str(root / "data"), "--quiet", *extra]


def test_help_is_fast_and_light():
    code = ("import sys, time; t = time.time(); from eoe_nb.oe_cli import eoe_oe_main\n"
            "try: eoe_oe_main(['--help'])\nexcept SystemExit: pass\n"
            f"print('LOADED', [m for m in {HEAVY!r} if m in sys.modules])")
    start = time.time()
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "train" in r.stdout and "calibrate" in r.stdout and "LOADED []" in r.stdout, r.stdout
    assert time.time() - start < 60


@pytest.mark.parametrize("argv, message", [
    (["train", "--dataset", "cifar10", "--phase", "tune", "--out", "OUT"], "--phase invalid choice"),
    (["train", "--out", "OUT"], "--dataset"),
    (["train", "--dataset", "cifar10", "--epochs", "two", "--out", "OUT"], "invalid int"),
    (["train", "--dataset", "cifar10", "--oe", "cifar10[5-7]", "--out", "OUT"], "baseline trains without OE"),
    (["train", "--dataset", "cifar10", "--phase", "oe_tune", "--oe", "cifar100", "--out", "OUT"], "starts from a baseline"),
    (["train", "--grid", "MISSING.json", "--out", "OUT"], "no such file"),
    (["train", "--dataset", "cifar10", "--data-root", "MISSING", "--out", "OUT"], "not found under"),
    (["test", "OUT", "--draws", "0"], "--draws"),
    (["test", "OUT"], "not a run folder"),
    (["calibrate", "OUT", "--no-official"], "--ood"),
    (["evaluate", "OUT"], "invalid choice"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, argv, message):
    argv = [a.replace("OUT", str(tmp_path / "out")).replace("MISSING", str(tmp_path / "missing")) for a in argv]
    rc, out, err = capture_cli(main, argv)
    assert rc == 2 and message in err and err.count("\n") == 1 and err.startswith("error: "), err
    assert list(tmp_path.iterdir()) == []


def _files(folder: Path) -> dict:
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file() and p.name != ".lock"}


def test_train_tune_test_calibrate_and_resume(root):
    base, tune = root / "base", root / "tune"
    assert capture_cli(main, ["train", "--dataset", "cifar10[0-4]", "--out", str(base), *train_args(root)])[0] == 0
    rc, out, err = capture_cli(main, ["train", "--dataset", "cifar10[0-4]", "--phase", "oe_tune", "--oe", "cifar10[5-7]",
                                      "--baseline", str(base), "--out", str(tune), *train_args(root)])
    assert rc == 0, err
    rc, out, err = capture_cli(main, ["test", str(tune), *eval_args(root)])
    assert rc == 0, err
    assert "MSP" in out and "Gaussian" in out and "mean with energy" in out
    res = read_json_file(tune / OOD_RESULTS_JSON)
    assert {e["score"] for e in res["results"]} == {"msp", "xent", "energy"}
    assert [e["ood"] for e in res["results"] if e["score"] == "msp" and e["row"] != "error_detection"] == ["cifar10[8-9]", "Gaussian", "mean"]
    assert all(e["draws"] == 3 for e in res["results"] if e["row"] == "ood") and res["n_test"] == 300
    assert (tune / "ood_results.csv").exists() and len(list((tune / "ood").glob("*.npz"))) == 3
    rc, out, err = capture_cli(main, ["calibrate", str(tune), *eval_args(root)])
    assert rc == 0, err
    cal = read_json_file(tune / CALIBRATION_JSON)
    assert 0.2 <= cal["temperature"] <= 5 and [e["ood"] for e in cal["results"]][-1] == "mean"
    before = _files(root)
    for argv in (["train", "--dataset", "cifar10[0-4]", "--out", str(base), *train_args(root)],
                 ["test", str(tune), *eval_args(root)], ["calibrate", str(tune), *eval_args(root)]):
        assert capture_cli(main, argv)[0] == 0
    assert _files(root) == before                                   # nothing redone, nothing rewritten
    rc, out, err = capture_cli(main, ["train", "--dataset", "cifar10[0-4]", "--out", str(base), *train_args(root, "--lr", "0.5")])
    assert rc == 2 and "another configuration" in err               # the configuration is verified on resume
    rc, out, err = capture_cli(main, ["test", str(tune), *eval_args(root)[:-1], "--draws", "2"])
    assert rc == 0 and read_json_file(tune / OOD_RESULTS_JSON)["options"]["draws"] == 2   # other draws: re-evaluated


def test_grid_in_dependency_order(root):
    exp = OEExperiment("grid", ["cifar10[0-4]"], phases=["baseline", "oe_tune"], seeds=[1],
                       train=dict(model="tiny_classifier", oe="cifar10[5-7]", epochs=1, batch_size=16, oe_batch_size=32,
                                  device="cpu", data_root=str(root / "data")),
                       test=dict(ood=["cifar10[8-9]", "Gaussian"], official=False, draws=2, test_limit=300))
    summaries, failures = run_oe_experiment(exp, root / "grids", progress=False)
    assert failures == [] and [s["phase"] for s in summaries] == ["baseline", "oe_tune"]
    assert (root / "grids" / "grid" / "runs.csv").exists() and (root / "grids" / "grid" / "oe_experiment.json").exists()
    before = _files(root / "grids")
    assert run_oe_experiment(exp, root / "grids", progress=False)[1] == []
    changed = {p for p, t in _files(root / "grids").items() if before.get(p) != t}
    assert {p.name for p in changed} <= {"runs.csv", "oe_experiment.json"}   # no run redone


@pytest.mark.parametrize("item", ["oe_table", "oe_calibration"])
def test_smoke_items(root, item):
    plan = oe_item_plan(item, "smoke", data_root=root / "data", model="tiny_classifier")
    assert plan.experiment is not None and plan.missing == []
    out = root / "items" / item
    rows = run_oe_item(plan, out, progress=False)
    assert rows and all(r.status == RowStatus.done for r in rows), [(r.label, r.status, r.error) for r in rows]
    assert {r.method for r in rows} == {"msp", "oe_finetune"} and {r.ood for r in rows} >= {"cifar10[8-9]", "Gaussian", "mean"}
    metric = "fpr95" if item == "oe_table" else "rms"
    assert all(getattr(r, metric) is not None and not r.comparable for r in rows)
    table = oe_results_table(rows)
    res = write_oe_item_outputs(plan, out, rows, {item: table})
    saved = json.loads((out / "result.json").read_text())
    assert saved["row_kind"] == "result" and saved["paper"] == "oe" and saved["status"] == "done" and saved["scale"] == "smoke"
    assert [ResultRow.from_dict(r).label for r in saved["rows"]] == [r.label for r in rows]
    assert (out / "tables" / f"{item}.csv").exists() and (out / "tables" / f"{item}.md").exists()


def test_paper_scale_plan_lists_missing_data(tmp_path):
    write_fake_cifar_pickles(tmp_path, n_train=10, n_test=10)
    plan = oe_item_plan("oe_table", "paper", data_root=tmp_path)
    assert plan.experiment is None                                   # 80 Million Tiny Images (the OE set) is not here
    assert {r.dataset for r in plan.missing} == {"cifar10", "cifar100", "svhn", "tinyimagenet", "mnist"}
    assert all(r.status == RowStatus.missing and r.missing for r in plan.missing)
    assert any("tinyimages" in k for r in plan.missing for k in r.missing)
