"""Issue 18, configuration as the single source: `RunConfig`'s fields and their comments are the flags of `eoe train`,
one `eoe` command runs every tool, flag errors are one line, and `--config` runs a results folder's configuration again.
The commands run as subprocesses, as a user runs them."""
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

from eoe_nb.core import RunConfig

BIN = Path(sys.executable).parent


def run(*cmd: str, data_root: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONWARNINGS="ignore")
    if data_root is not None: env["EOE_DATA"] = str(data_root)
    return subprocess.run([str(BIN / cmd[0]), *cmd[1:]], capture_output=True, text=True, env=env, timeout=timeout)


def test_every_runconfig_field_is_a_train_flag_with_help():
    from eoe_nb.cli import _parser
    r = run("eoe", "train", "--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: eoe train"), r.stderr
    actions = {a.dest: a for a in _parser()._actions}
    for f in dataclasses.fields(RunConfig):
        flag = "--objective-arg" if f.name == "objective_args" else "--" + f.name.replace("_", "-")
        assert flag in r.stdout, f"RunConfig.{f.name} has no flag {flag} in `eoe train --help`"
        dest = "objective_arg" if f.name == "objective_args" else f.name
        assert (actions[dest].help or "").strip(), f"the flag of RunConfig.{f.name} has no help text"


def test_eoe_help_lists_the_subcommands():
    r = run("eoe", "--help")
    assert r.returncode == 0, r.stderr
    listed = {line.split()[0] for line in r.stdout.splitlines() if line.startswith("    ") and line.split()}
    assert {"train", "score", "search", "oe", "figures", "data"} <= listed, r.stdout


def test_nan_flag_is_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    r = run("eoe", "train", "--dataset", "cifar10", "--lr", "nan", "--out", str(out))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1
    assert r.stderr.startswith("error: --lr nan: not a finite number; pass a finite value")
    assert not out.exists()
    r = run("eoe-train", "--filter-magnitude", "inf", "--out", str(out))             # the alias, another float field
    assert r.returncode == 2 and r.stderr.startswith("error: --filter-magnitude inf: not a finite number")
    assert not out.exists()


def test_config_of_a_folder_reproduces_its_configuration(fake_data_root, tmp_path):
    first, again, variant = tmp_path / "first", tmp_path / "again", tmp_path / "variant"
    r = run("eoe", "train", "--dataset", "cifar10[0-1]", "--classes", "0", "--oe", "cifar10[2-3]",
            "--objective", "focal", "--objective-arg", "gamma=1", "--model", "cnn32", "--epochs", "1",
            "--batch-size", "16", "--seeds", "0", "--workers", "0", "--device", "cpu", "--no-plots", "--quiet",
            "--out", str(first), data_root=fake_data_root)
    assert r.returncode == 0, r.stderr[-3000:]
    stored = json.loads((first / "config.json").read_text())
    r = run("eoe", "train", "--config", str(first), "--no-plots", "--quiet", "--out", str(again),
            data_root=fake_data_root)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((again / "config.json").read_text()) == stored          # the same fields and fingerprint
    auroc = lambda folder: json.loads((folder / "runs" / "cls0_seed0" / "result.json").read_text())["auroc"]
    assert auroc(again) == auroc(first)                                        # and the same numbers
    r = run("eoe-train", "--config", str(first / "config.json"), "--lr", "0.5", "--no-plots", "--quiet",
            "--out", str(variant), data_root=fake_data_root)                   # the flags given replace its fields
    assert r.returncode == 0, r.stderr[-3000:]
    changed = json.loads((variant / "config.json").read_text())["config"]
    assert [k for k in stored["config"] if stored["config"][k] != changed[k]] == ["lr"] and changed["lr"] == 0.5


def test_every_config_field_is_a_flag_of_eoe_oe_and_eoe_search():
    from eoe_nb.oe_cli import _test_parser, _train_parser
    from eoe_nb.oe_runs import OETestOptions
    from eoe_nb.oe_train import OETrainConfig
    from eoe_nb.search import SearchConfig
    from eoe_nb.search_cli import _search_parser
    renamed = dict(in_dist="--dataset", validation="--validate")           # the flag names users had before
    for parser, cls, skip in ((_train_parser(), OETrainConfig, ()), (_test_parser(), OETestOptions, ()),
                              (_test_parser("calibrate", "eoe-oe calibrate"), OETestOptions, ()),
                              (_search_parser(), SearchConfig, ("run",))):
        actions = {a.dest: a for a in parser._actions}
        for f in dataclasses.fields(cls):
            if f.name in skip: continue
            flag = renamed.get(f.name, "--" + f.name.replace("_", "-"))
            assert f.name in actions and flag in actions[f.name].option_strings, \
                f"{cls.__name__}.{f.name} has no flag {flag} in `{parser.prog}`"
            assert (actions[f.name].help or "").strip(), f"the flag of {cls.__name__}.{f.name} has no help text"
    r = run("eoe", "oe", "train", "--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: eoe oe train") and "--oe-batch-size" in r.stdout, r.stderr
    r = run("eoe", "search", "--help")
    assert r.returncode == 0 and "--tournament-replacement" in r.stdout and "--filter-magnitude" in r.stdout, r.stderr
