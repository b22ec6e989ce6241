"""`eoe-oe test --weights FILE --model wrn40_2|allconv` (issue 21): state dicts in the format of the official Outlier
Exposure snapshots (hendrycks/outlier-exposure, `torch.save(net.state_dict())` of CIFAR/models/wrn.py and allconv.py).
The key names and shapes come from tests/fixtures/official_oe_state_dicts.json, built once from the official classes
(see tests/fixtures/README.md); a file with them, random weights, is tested end to end on a fake CIFAR-10."""
import hashlib
import json
from pathlib import Path

import pytest
import torch

from eoe_nb.core import run_cli
from eoe_nb.folders import read_json_file
from eoe_nb.oe_cli import eoe_oe_main
from eoe_nb.oe_runs import OOD_RESULTS_JSON, WEIGHTS_JSON
from eoe_nb.testing import capture_cli, write_fake_cifar_pickles

FIXTURE = Path(__file__).parent / "fixtures" / "official_oe_state_dicts.json"
OFFICIAL = json.loads(FIXTURE.read_text())


def main(argv): return run_cli(eoe_oe_main, argv)


def official_state_dict(model: str, seed: int = 0, prefix: str = "") -> dict:
    "Random tensors with the official names and shapes (as torch.save(net.state_dict()) of the official class)."
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in OFFICIAL[model].items():
        if k.endswith("num_batches_tracked"): v = torch.tensor(0)
        elif k.endswith("running_var"): v = torch.rand(shape, generator=g) + 0.5
        else: v = 0.1 * torch.randn(shape, generator=g)
        out[prefix + k] = v
    return out


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    torch.set_num_threads(1)
    r = tmp_path_factory.mktemp("weights")
    write_fake_cifar_pickles(r / "data", n_train=10, n_test=60)
    return r


def args(root, *extra):
    return ["--no-official", "--ood", "Gaussian", "--draws", "2", "--test-bs", "1", "--device", "cpu",
            "--data-root", str(root / "data"), "--quiet", *extra]


@pytest.mark.parametrize("model", ["wrn40_2", "allconv"])
def test_our_models_have_the_official_names_and_shapes(model):
    import eoe_nb.oe_train  # noqa: F401  (registers allconv)
    from eoe_nb.models import build_model
    ours = {k: list(v.shape) for k, v in build_model(model, rep_dim=10).state_dict().items()}
    assert list(ours.items()) == list(OFFICIAL[model].items())


@pytest.mark.parametrize("model, name, extra, phase, prefix", [
    ("wrn40_2", "cifar10_wrn_oe_tune_epoch_9.pt", [], "oe_tune", ""),               # phase from the official name
    ("allconv", "my_allconv.pt", ["--phase", "baseline"], "baseline", "module."),   # saved from DataParallel
])
def test_official_format_end_to_end(root, model, name, extra, phase, prefix):
    weights, out = root / name, root / f"out-{model}"
    torch.save(official_state_dict(model, prefix=prefix), weights)
    rc, stdout, err = capture_cli(main, ["test", str(out), "--weights", str(weights), "--model", model, *extra,
                                         *args(root)])
    assert (rc, err) == (0, ""), err
    res = read_json_file(out / OOD_RESULTS_JSON)
    assert (res["phase"], res["in_dist"], res["n_test"]) == (phase, "cifar10", 60)
    msp = [e for e in res["results"] if e["score"] == "msp"]
    assert [e["ood"] for e in msp] == ["Error Detection", "Gaussian", "mean"]
    assert all(0 <= e["auroc"] <= 100 for e in msp) and (out / "ood_results.csv").is_file()
    rec = read_json_file(out / WEIGHTS_JSON)
    assert rec["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest() and rec["model"] == model
    assert rec["mean"] == pytest.approx([v / 255 for v in (125.3, 123.0, 113.9)])
    assert rec["std"] == pytest.approx([v / 255 for v in (63.0, 62.1, 66.7)])
    assert "Gaussian" in stdout


def _bad(tmp_path, name, content):
    p = tmp_path / name
    torch.save(content, p)
    return p


@pytest.mark.parametrize("make, argv, message", [
    (lambda t: _bad(t, "cifar10_wrn_baseline_epoch_99.pt", official_state_dict("wrn40_2")), ["--model", "allconv"],
     "does not hold a allconv state dict of cifar10 (missing keys features.0.weight"),
    (lambda t: _bad(t, "cifar10_wrn_baseline_epoch_99.pt", official_state_dict("wrn40_2")), ["--model", "allconv"],
     "pick --model wrn40_2"),
    (lambda t: _bad(t, "cifar100_allconv_baseline_epoch_99.pt", official_state_dict("allconv")),
     ["--model", "allconv"], "classifier.weight is (10, 192), the model's (100, 192)"),
    (lambda t: _bad(t, "w.pt", {"a.weight": torch.ones(2)}), ["--model", "wrn40_2", "--phase", "baseline"],
     "give a state dict of wrn40_2 or allconv"),
    (lambda t: _bad(t, "w.pt", torch.nn.Linear(2, 2)), ["--model", "wrn40_2", "--phase", "baseline"],
     "loading it would call torch.nn.modules.linear.Linear"),
    (lambda t: _bad(t, "w.pt", official_state_dict("wrn40_2")), ["--phase", "baseline"], "needs --model"),
    (lambda t: _bad(t, "w.pt", official_state_dict("wrn40_2")), ["--model", "wrn40_2"], "give --phase"),
    (lambda t: _bad(t, "w.pt", official_state_dict("wrn40_2")), ["--model", "resnet", "--phase", "baseline"],
     "--model 'resnet'"),
    (lambda t: t / "missing.pt", ["--model", "wrn40_2", "--phase", "baseline"], "no such file"),
])
def test_bad_weights_are_one_line_and_write_nothing(root, tmp_path, make, argv, message):
    weights, out = make(tmp_path), tmp_path / "out"
    rc, stdout, err = capture_cli(main, ["test", str(out), "--weights", str(weights), *argv, *args(root)])
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not out.exists()


def test_model_without_weights_is_one_line(root, tmp_path):
    rc, stdout, err = capture_cli(main, ["test", str(tmp_path / "out"), "--model", "wrn40_2", *args(root)])
    assert rc == 2 and "describe --weights FILE" in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()
