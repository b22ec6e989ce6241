"""A bounded fuzz test of the command lines (issue 19): random flags and values (numbers, NaN, huge and negative values,
unicode, empty strings, long and odd paths), broken files where a command reads one (config.json, a run folder's
manifest, result and checkpoint), for every subcommand of `eoe`. Each command must exit 0, or exit 2 with exactly one
`error:` line and no traceback; a refused command leaves no output folder and no temporary file. The commands run
in-process (`run_cli`) on an empty data root, so valid settings stop at the missing data instead of training."""
import contextlib
import io
import json
import os
import string
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from eoe_nb.core import run_cli
from eoe_nb.eoe_cli import eoe_main

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# flags of each subcommand, read from its parser (they are generated from the config dataclasses)
from eoe_nb.cli import _parser as _train_parser                      # noqa: E402
from eoe_nb.oe_cli import _test_parser, _train_parser as _oe_train_parser  # noqa: E402
from eoe_nb.report import _parser as _figures_parser                  # noqa: E402
from eoe_nb.score import _parser as _score_parser                     # noqa: E402
from eoe_nb.search_cli import _search_parser                          # noqa: E402


def _flags(parser) -> list[str]:
    return sorted(s for a in parser._actions for s in a.option_strings if s.startswith("--") and s != "--help")


FLAGS = {("train",): _flags(_train_parser()), ("oe", "train"): _flags(_oe_train_parser()),
         ("oe", "test"): _flags(_test_parser()), ("search",): _flags(_search_parser()),
         ("figures",): _flags(_figures_parser()), ("score",): _flags(_score_parser()),
         ("data", "check"): ["--data-root", "--json"]}
# bounded and reproducible: the same examples every run, no example database, no minutes-long shrinking
FUZZ = dict(deadline=None, derandomize=True, database=None, phases=(Phase.explicit, Phase.generate),
            suppress_health_check=list(HealthCheck))
NEVER = {"--wait", "--max-workers", "--devices", "--executor", "--slurm-partition"}   # waiting, process pools, SLURM

values = st.one_of(
    st.sampled_from(["0", "1", "-1", "2", "nan", "inf", "-inf", "1e309", "1e-320", "0.5", "abc", "", " ", "none",
                     "cifar10", "cifar10[0-4]", "cifar10[4-0]", "cifar10[]", "cifar10[99]", "mnist[0,3]", "nosuchset",
                     "hsc", "bce", "clip", "cnn32", "cpu", "cuda", "fp16", "bf16", "smoke", "paper", "test",
                     "validation", "lpf+train_oe", "x" * 300, "ü/ñ", "../..", "--", "-", "999999999999999999999"]),
    st.text(alphabet=string.printable + "äöü€中", max_size=12),
    st.integers(min_value=-10**6, max_value=10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr))


def call(argv: list[str]) -> tuple[int, str]:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        try: rc = run_cli(eoe_main, argv)
        except SystemExit as e: rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    return rc, err.getvalue()


def check(rc: int, err: str, out: Path, argv: list[str]) -> None:
    assert "Traceback" not in err, (argv, err[-3000:])
    assert rc in (0, 2), (argv, rc, err[-3000:])
    if rc == 2:
        lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
        assert len(lines) == 1, (argv, err[-3000:])
        assert not out.exists(), (argv, err[-3000:], sorted(out.rglob("*")))       # refused before writing
    stray = [p for p in out.parent.rglob("*.tmp")] if out.parent.exists() else []
    assert not stray, (argv, stray)


@pytest.fixture(scope="module")
def places(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fuzz")
    (root / "empty_data").mkdir()
    return dict(root=root, data=root / "empty_data")


@settings(max_examples=100, **FUZZ)
@given(command=st.sampled_from(sorted(FLAGS)), picks=st.lists(st.tuples(st.integers(0, 10**6), values), max_size=5))
def test_random_flags(places, command, picks):
    flags = [f for f in FLAGS[command] if f not in NEVER]
    with tempfile.TemporaryDirectory(dir=places["root"]) as d:
        out = Path(d) / "out"
        argv = list(command)
        if command == ("oe", "test"): argv.append(str(Path(d) / "no_run"))
        if command == ("score",): argv += [str(Path(d) / "no_run"), str(Path(d))]
        if command == ("data", "check"): argv.append(picks[0][1] if picks else "cifar10")
        for i, value in picks:
            argv += [flags[i % len(flags)], value]
        argv += ["--data-root", str(places["data"])] if "--data-root" in flags else []
        argv += ["--out", str(out)] if "--out" in flags else []
        if command == ("figures",): argv.append("--dry-run")
        rc, err = call(argv)
        check(rc, err, out, argv)


broken = st.one_of(st.binary(max_size=64), st.sampled_from([b"", b"{", b"[]", b"null", b'{"config": 3}',
                                                            b'{"dataset": "cifar10", "lr": NaN}', b"\xff\xfe"]))


@settings(max_examples=40, **FUZZ)
@given(manifest=broken, result=broken, checkpoint=broken, config=broken)
def test_broken_files(places, manifest, result, checkpoint, config):
    with tempfile.TemporaryDirectory(dir=places["root"]) as d:
        run = Path(d) / "run"
        run.mkdir()
        (run / "manifest.json").write_bytes(manifest)
        (run / "result.json").write_bytes(result)
        (run / "checkpoint.pt").write_bytes(checkpoint)
        (run / "config.json").write_bytes(config)
        (run / "final.pt").write_bytes(checkpoint)
        out = Path(d) / "out"
        for argv in (["score", str(run), str(Path(d)), "--out", str(out)],
                     ["train", "--config", str(run), "--data-root", str(places["data"]), "--out", str(out)],
                     ["oe", "test", str(run), "--data-root", str(places["data"])]):
            rc, err = call(argv)
            check(rc, err, out, argv)
            assert rc == 2, (argv, err)
