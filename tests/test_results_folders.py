"""Result folders a lab can trust (issue 10): one owner per folder (an OS lock that dies with its process), data verified on
resume, arguments checked before anything is written, stale temporaries removed, summaries written on interrupt, and a fault
loop of random kills that ends bit-identical to an uninterrupted run."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from eoe_nb.cli import eoe_train_main
from eoe_nb.core import run_cli
from eoe_nb.testing import write_fake_cifar10_folder

BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_fake_cifar10_folder(tmp_path_factory.mktemp("rf_data"), n_train=16, n_test=8)


@pytest.fixture(scope="module")
def other_data(tmp_path_factory) -> Path:
    "The same train images, other test images (12 per class)."
    return write_fake_cifar10_folder(tmp_path_factory.mktemp("rf_other"), n_train=16, n_test=12)


def T(data, out, *extra, classes=("0",), epochs="1"):
    return ["--dataset", "cifar10[0-1]", "--classes", *classes, "--oe", "cifar10[2-3]", "--objective", "hsc", "--model", "cnn32",
            "--epochs", epochs, "--milestones", "--batch-size", "8", "--seeds", "0", "--workers", "0", "--device", "cpu",
            "--data-root", str(data), "--out", str(out), "--no-plots", *extra]


def cli(capsys, args):
    capsys.readouterr()
    rc = run_cli(eoe_train_main, args)
    out, err = capsys.readouterr()
    return rc, out, err


def _sigint_default():
    # a shell's background job (`make test &`) ignores SIGINT, and a Python started with SIGINT ignored never raises
    # KeyboardInterrupt: the commands under test get the default disposition, as in a terminal
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def spawn(args):
    return subprocess.Popen([str(BIN / "eoe-train"), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, HF_HUB_OFFLINE="1"), preexec_fn=_sigint_default)


def wait_for(cond, timeout=90.0):
    end = time.time() + timeout
    while time.time() < end:
        if cond(): return True
        time.sleep(0.05)
    return False


def lock_pid(out: Path) -> str:
    try: return (out / ".lock").read_text().strip()
    except OSError: return ""


def error_line(err: str) -> str:
    lines = [l for l in err.strip().splitlines() if l.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_case1_race_two_configurations_one_folder(data, tmp_path, capsys):
    out = tmp_path / "race"
    a, b = spawn(T(data, out, "--lr", "0.001")), spawn(T(data, out, "--lr", "0.1", classes=("1",)))
    (oa, ea), (ob, eb) = a.communicate(timeout=300), b.communicate(timeout=300)
    rcs = {a.returncode, b.returncode}
    assert rcs == {0, 2}, (ea[-2000:], eb[-2000:])            # one owner; the other is refused, never mixed
    win_lr, lose_err = (0.001, eb) if a.returncode == 0 else (0.1, ea)
    assert "in use by process" in error_line(lose_err) or "another configuration" in error_line(lose_err)
    assert json.loads((out / "config.json").read_text())["config"]["lr"] == win_lr
    assert len(pd.read_csv(out / "runs.csv")) == 1
    winner = T(data, out, "--lr", "0.001") if win_lr == 0.001 else T(data, out, "--lr", "0.1", classes=("1",))
    rc, so, se = cli(capsys, winner)                         # the winner's command is not refused afterwards
    assert rc == 0, se


def test_case5_one_owner_lock_freed_by_sigkill(data, tmp_path):
    out = tmp_path / "busy"
    cmd = T(data, out, epochs="400")
    a = spawn(cmd)
    try:
        assert wait_for(lambda: lock_pid(out) == str(a.pid)), "the first command never took the lock"
        b = subprocess.run([str(BIN / "eoe-train"), *cmd], capture_output=True, text=True, timeout=120)
        assert b.returncode == 2 and f"in use by process {a.pid}" in error_line(b.stderr)   # at once, naming the holder
        assert a.poll() is None
        a.kill(); a.wait()                                                # kill -9, then start again at once
        c = spawn(cmd)
        try:
            assert wait_for(lambda: lock_pid(out) == str(c.pid)), "the lock of the killed process was not freed"
        finally:
            c.send_signal(signal.SIGINT); c.communicate(timeout=60)
        assert c.returncode == 130
    finally:
        if a.poll() is None: a.kill(); a.wait()


def test_case5_wait_flag(data, tmp_path):
    out = tmp_path / "waiting"
    a = spawn(T(data, out, epochs="30"))
    assert wait_for(lambda: lock_pid(out) == str(a.pid))
    b = subprocess.run([str(BIN / "eoe-train"), *T(data, out, "--wait", epochs="30")], capture_output=True, text=True, timeout=300)
    a.communicate(timeout=300)
    assert a.returncode == 0 and b.returncode == 0, b.stderr[-2000:]
    assert "1 finished run(s) kept, 0 to run" in b.stdout + b.stderr    # the second waited, then did nothing twice


def test_case2_other_data_refused_then_overwrite(data, other_data, tmp_path, capsys):
    out = tmp_path / "mix"
    rc, so, se = cli(capsys, T(data, out))
    assert rc == 0, se
    rc, so, se = cli(capsys, T(other_data, out, classes=("0", "1")))
    line = error_line(se)
    assert rc == 2 and "holds runs made with other data" in line and "test checksum recorded" in line and "--overwrite" in line
    assert "train checksum" not in line                                  # only what differs is named
    assert len(pd.read_csv(out / "runs.csv")) == 1                       # nothing was added
    rc, so, se = cli(capsys, T(other_data, out, "--overwrite", classes=("0", "1")))
    assert rc == 0, se
    df = pd.read_csv(out / "runs.csv")
    assert sorted(df["normal_class"]) == [0, 1] and set(df["n_test"]) == {24}


def test_case6_nothing_written_before_checks(data, tmp_path, capsys):
    out = tmp_path / "bad"
    for bad in (["--lr", "-0.01"], ["--seeds", "-1"], ["--epochs", "0"]):       # cases 3 and 7: refused before any file
        rc, so, se = cli(capsys, T(data, out) + bad)
        assert rc == 2, (bad, se); error_line(se)
        assert not out.exists()
    rc, so, se = cli(capsys, T(tmp_path / "no_data", out))                 # the data are missing: no config.json
    assert rc == 2 and "not found" in error_line(se)
    assert not (out / "config.json").exists()
    rc, so, se = cli(capsys, T(data, out, "--lr", "0.01"))                  # the corrected command (another lr) runs
    assert rc == 0, se


def test_case7_output_folder_errors(data, tmp_path, capsys):
    f = tmp_path / "file"; f.write_text("x")
    rc, so, se = cli(capsys, T(data, f))
    assert rc == 2 and "is a file" in error_line(se)
    rc, so, se = cli(capsys, T(data, f / "out"))
    assert rc == 2 and "cannot be created" in error_line(se)
    if os.geteuid() != 0:                                                   # root writes into read-only folders anyway
        ro = tmp_path / "ro"; ro.mkdir(); ro.chmod(0o555)
        rc, so, se = cli(capsys, T(data, ro / "out"))
        assert rc == 2 and "not writable" in error_line(se)


def test_case7_stale_temporaries_and_mean_line(data, tmp_path, capsys):
    out = tmp_path / "stale"
    rc, so, se = cli(capsys, T(data, out, classes=("0", "1")))
    assert rc == 0, se and "over 2 class(es)" in so
    stale = [out / "runs" / "cls0_seed0" / ".checkpoint.pt.x1.tmp", out / ".runs.csv.x2.tmp"]
    for p in stale: p.write_bytes(b"partial")
    rc, so, se = cli(capsys, T(data, out))                                 # class 0 only: its line covers class 0 only
    assert rc == 0, se
    assert "mean AUROC over 1 class(es)" in so
    assert not any(p.exists() for p in stale)
    assert len(pd.read_csv(out / "runs.csv")) == 2                         # the folder keeps both


def test_case7_sigint_writes_summary(data, tmp_path):
    out = tmp_path / "sigint"
    p = spawn(T(data, out, classes=("0", "1"), epochs="40"))
    try:
        assert wait_for(lambda: (out / "runs" / "cls0_seed0" / "result.json").exists(), timeout=240)
        (out / "runs.csv").unlink(missing_ok=True); (out / "summary.json").unlink(missing_ok=True)   # only the exit path writes them now
        p.send_signal(signal.SIGINT)
        so, se = p.communicate(timeout=60)
    finally:
        if p.poll() is None: p.kill(); p.wait()
    assert p.returncode == 130 and "finished runs are kept" in se
    assert len(pd.read_csv(out / "runs.csv")) == 1 and (out / "summary.json").exists()


def test_pool_processes_share_a_configuration_folder(data, tmp_path):
    from eoe_nb.experiments import Experiment, run_experiment
    base = dict(dataset="cifar10[0-1]", oe="cifar10[2-3]", objective="hsc", model="cnn32", epochs=1, milestones=[], batch_size=8,
                seeds=[0], workers=0, device="cpu", data_root=str(data))
    df = run_experiment(Experiment("pool", base, {"lr": [0.001]}), tmp_path, executor="pool", max_workers=2, progress=False)
    assert len(df) == 2                                     # two processes, one configuration folder, one lock per run
    folder = next((tmp_path / "pool").glob("*/runs")).parent
    assert (folder / "runs" / "cls0_seed0" / ".lock").exists() and (folder / "runs" / "cls1_seed0" / ".lock").exists()
    assert len(pd.read_csv(folder / "runs.csv")) == 2


@pytest.mark.slow
def test_fault_loop():
    t0 = time.time()
    r = subprocess.run([sys.executable, str(HERE / "fault_loop.py"), "--kills", "10"], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "results identical" in r.stdout
    assert time.time() - t0 < 120


def test_case4_result_files_follow_the_umask(data, tmp_path):
    out = tmp_path / "perm"
    r = subprocess.run([str(BIN / "eoe-train"), *T(data, out)], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, HF_HUB_OFFLINE="1"), preexec_fn=lambda: os.umask(0o022))
    assert r.returncode == 0, r.stderr[-2000:]
    files = [out / "config.json", out / "runs.csv", out / "summary.json", out / "runs" / "cls0_seed0" / "result.json",
             out / "runs" / "cls0_seed0" / "scores.npz", out / "runs" / "cls0_seed0" / "manifest.json"]
    assert {f.name: oct(f.stat().st_mode & 0o777) for f in files} == {f.name: "0o644" for f in files}


def test_case8_cli_imports_no_heavy_plotting_or_clip_libraries():
    code = ("import sys, eoe_nb.cli; heavy = [m for m in ('matplotlib', 'sklearn', 'open_clip', 'papermill', 'scipy') "
            "if m in sys.modules]; print(heavy)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "[]", (r.stdout, r.stderr[-2000:])
