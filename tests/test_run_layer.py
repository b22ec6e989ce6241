"""One run-folder contract for every command that writes (issue 18), tried with real processes as a user would: two commands
on one folder (one owner, the other refused naming it or waiting with --wait; nothing lost, nothing done twice), kills that
leave no stale temporaries, NaN settings refused before anything is written, and fault loops of `eoe-oe train` and
`eoe-search` that end identical to uninterrupted runs."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eoe_nb.testing import write_fake_cifar10_folder

BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent
ENV = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_fake_cifar10_folder(tmp_path_factory.mktemp("rl_data"), n_train=16, n_test=8)


def oe(data, out, *extra, epochs="2", lr="0.1"):
    return [str(BIN / "eoe-oe"), "train", "--dataset", "cifar10[0-4]", "--model", "cnn32_classifier", "--epochs", epochs,
            "--lr", lr, "--batch-size", "16", "--device", "cpu", "--data-root", str(data), "--out", str(out), "--quiet", *extra]


def search(data, out, *extra, seed="3", generations="2"):
    return [str(BIN / "eoe-search"), "--dataset", "cifar10[0-1]", "--oe", "cifar10[2-3]", "--classes", "0", "--population", "2",
            "--generations", generations, "--mutation-pool", "6", "--mutation-k", "2", "--duplicate-distance", "0",
            "--tournament-size", "2", "--epochs", "1", "--milestones", "--seeds", "0", "--batch-size", "8", "--workers", "0",
            "--preset", "cifar10", "--transform", "noaug_cifar10", "--device", "cpu", "--data-root", str(data), "--seed", seed,
            "--out", str(out), "--quiet", *extra]


def spawn(cmd):
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


def run(cmd, timeout=300):
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=timeout)


def holds_lock(out: Path, p: subprocess.Popen, timeout: float = 120) -> bool:
    "Wait until process `p` holds the lock of `out`."
    end = time.time() + timeout
    while time.time() < end and p.poll() is None:
        try:
            if (out / ".lock").read_text().strip() == str(p.pid): return True
        except OSError: pass
        time.sleep(0.05)
    return False


def wait_for(cond, timeout: float = 180) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        if cond(): return True
        time.sleep(0.05)
    return False


def error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def stale(out: Path) -> list[Path]:
    return sorted(out.rglob(".*.tmp"))


def test_oe_train_second_configuration_refused_naming_the_owner(data, tmp_path):
    out = tmp_path / "x"
    a = spawn(oe(data, out, epochs="40", lr="0.1"))
    try:
        assert holds_lock(out, a), a.communicate()[1][-2000:]
        b = run(oe(data, out, epochs="40", lr="0.05"))
        assert b.returncode == 2 and f"in use by process {a.pid}" in error_line(b.stderr)
        assert wait_for(lambda: (out / "checkpoint.pt").exists()), "the first run saved no epoch"
        assert json.loads((out / "config.json").read_text())["lr"] == 0.1
    finally:
        a.kill(); a.wait()                                   # kill -9 mid-run: its checkpoint and config stay
    c = run(oe(data, out, epochs="40", lr="0.05"))           # the killed run's weights are not overwritten by another lr
    assert c.returncode == 2 and "lr: 0.1 there, 0.05 here" in error_line(c.stderr)


def test_oe_train_identical_commands_train_once(data, tmp_path):
    out = tmp_path / "same"
    a = spawn(oe(data, out, epochs="6"))
    assert holds_lock(out, a)
    b = run(oe(data, out, epochs="6"))                        # without --wait: refused at once
    assert b.returncode == 2 and f"in use by process {a.pid}" in error_line(b.stderr)
    c = spawn(oe(data, out, "--wait", epochs="6"))           # with --wait: waits, then finds the run finished
    a.communicate(timeout=300)
    final = (out / "final.pt").stat().st_mtime_ns
    c.communicate(timeout=300)
    assert a.returncode == 0 and c.returncode == 0
    assert (out / "final.pt").stat().st_mtime_ns == final    # not trained twice
    assert [r.split(",")[0] for r in (out / "train_log.csv").read_text().splitlines()[1:]] == [str(e) for e in range(6)]
    assert stale(out) == []


def test_oe_failed_start_does_not_refuse_the_corrected_rerun(data, tmp_path):
    out = tmp_path / "diverged"
    r = run(oe(data, out, epochs="1", lr="1e30"))
    assert r.returncode == 2 and "non-finite training loss" in error_line(r.stderr)
    r = run(oe(data, out, epochs="1", lr="0.1"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((out / "config.json").read_text())["lr"] == 0.1 and (out / "final.pt").exists()


@pytest.mark.parametrize("cmd, flag", [
    (lambda d, o: oe(d, o, "--lam", "nan"), "--lam nan"),
    (lambda d, o: oe(d, o, lr="inf"), "--lr inf"),
    (lambda d, o: search(d, o, "--mutation-chance", "nan"), "--mutation-chance nan"),
    (lambda d, o: search(d, o, "--lr=-inf"), "--lr -inf"),
])
def test_non_finite_settings_refused_before_anything_is_written(data, tmp_path, cmd, flag):
    out = tmp_path / "nan" / "out"
    r = run(cmd(data, out))
    assert r.returncode == 2 and flag in error_line(r.stderr) and "not a finite number" in r.stderr
    assert not (tmp_path / "nan").exists()


def test_search_second_search_refused_and_killed_search_leaves_no_temporaries(data, tmp_path):
    out = tmp_path / "s"
    a = spawn(search(data, out, seed="3", generations="30"))
    try:
        assert holds_lock(out, a), a.communicate()[1][-2000:]
        b = run(search(data, out, seed="5"))
        assert b.returncode == 2 and f"in use by process {a.pid}" in error_line(b.stderr)
        assert wait_for(lambda: (out / "search_state.json").exists()), "the first search finished no generation"
        time.sleep(1)                                        # killed in the middle of a later generation
    finally:
        a.kill(); a.wait()
    b = run(search(data, out, seed="5"))                     # the killed search's state is kept: another seed is refused
    assert b.returncode == 2 and "seed: 3 there, 5 here" in error_line(b.stderr)
    r = run(search(data, out, "--max-generations", "1", seed="3", generations="30"))   # resumed by its owner
    assert r.returncode == 0, r.stderr[-2000:]
    assert stale(out) == []                                  # in the search folder and its fitness configuration folders


@pytest.mark.slow
@pytest.mark.parametrize("command", ["oe", "search"])
def test_fault_loop(command):
    r = subprocess.run([sys.executable, str(HERE / "fault_loop.py"), "--command", command, "--kills", "3"], capture_output=True,
                       text=True, timeout=600, env=ENV)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "results identical" in r.stdout
