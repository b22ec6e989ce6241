"""End to end tests of `eoe-figures`: every item at the smoke scale on the real CIFAR-10, an empty data root (every item
reports missing data), a deliberately failing notebook, and the one-line error of a bad argument."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from eoe_nb.report import image_sources

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "papers_figures"
AD_ITEMS = ["ovr_table", "loco_table", "fewshot", "zeroshot_clip", "other_datasets"]     # rows: ItemRow (AUROC tables)
RESULT_ITEMS = ["frequency", "single_outlier", "filtered_search", "oe_table", "oe_calibration"]   # rows: ResultRow
ITEMS = AD_ITEMS + RESULT_ITEMS


def eoe_figures(*args: str, timeout: int = 1800, **env_vars: str) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "eoe-figures"
    cmd = [str(script)] if script.exists() else [sys.executable, "-c", "from eoe_nb.report import eoe_figures_cli; eoe_figures_cli()"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", **env_vars)
    return subprocess.run([*cmd, *args], capture_output=True, text=True, env=env, timeout=timeout)


def summary_status(report: str) -> dict:
    "item -> status, from the summary table at the top of report.md."
    out = {}
    for line in report.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 7 and cells[0] in ITEMS and cells[0] not in out: out[cells[0]] = cells[3]
    return out


def images_resolve(out: Path) -> list[str]:
    "The <img> sources of OUT/report.html; each must be a data: URI or a file relative to the report."
    srcs = image_sources((out / "report.html").read_text())
    for src in srcs:
        assert src.startswith("data:") or (out / src).is_file(), f"report.html shows {src}, which does not resolve"
    return srcs


def sources_untouched():
    for name in ITEMS:
        nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{name}.ipynb has outputs"


def test_smoke_every_item_on_real_cifar10(real_data_root, tmp_path):
    out = tmp_path / "figs"
    r = eoe_figures("--scale", "smoke", "--out", str(out), "--data-root", str(real_data_root))
    assert r.returncode == 0, r.stderr[-3000:]
    report = (out / "report.md").read_text()
    # CIFAR-10 rows ran; ImageNet-30 and the other data sets are not here: their rows are missing
    assert summary_status(report) == {"ovr_table": "partial", "loco_table": "partial", "fewshot": "partial",
                                      "zeroshot_clip": "partial", "other_datasets": "missing",
                                      **{name: "done" for name in RESULT_ITEMS}}      # their smoke scales use CIFAR-10 only
    for name in RESULT_ITEMS:
        res = json.loads((out / name / "result.json").read_text())
        assert (res["scale"], res["row_kind"], res["status"], res["comparable"]) == ("smoke", "result", "done", False), name
        assert res["rows"] and all(r["status"] == "done" and r["deviations"] and r["values"] for r in res["rows"]), name
        assert set(res["columns"]) >= {k for r in res["rows"] for k in r["values"] if k != "n_classes"}, name
    assert json.loads((out / "oe_table" / "result.json").read_text())["paper"] == "oe"
    for name in AD_ITEMS:
        assert (out / "executed" / f"{name}.ipynb").exists()
        res = json.loads((out / name / "result.json").read_text())
        assert res["scale"] == "smoke" and res["comparable"] is False
        done = [row for row in res["rows"] if row["status"] == "done"]
        assert all(row["dataset"] == "cifar10" and 0 <= row["mean"] <= 100 and row["n_classes"] == 2 for row in done)
        assert all(row["missing"] for row in res["rows"] if row["status"] == "missing")
        assert all(row["deviations"] for row in res["rows"])                  # the smoke scale deviates from the paper
    ovr = json.loads((out / "ovr_table" / "result.json").read_text())
    assert [row["method"] for row in ovr["rows"] if row["status"] == "done"] == ["hsc", "bce", "focal", "dsad", "dsvdd",
                                                                               "clip_zeroshot", "bce_clip"]
    for f in ["ovr_table/figures/ovr_table.png", "ovr_table/figures/ovr_table.pdf", "ovr_table/tables/ovr_table.md",
              "fewshot/figures/fewshot.png", "fewshot/tables/runs.csv", "report.html"]:
        assert (out / f).exists(), f
    fewshot = json.loads((out / "fewshot" / "result.json").read_text())
    assert {(row["method"], row["oe_size"]) for row in fewshot["rows"] if row["status"] == "done"} == \
        {("hsc", 1), ("hsc", None), ("bce", 1), ("bce", None), ("dsvdd", 0)}
    # the published numbers are beside the reproduced ones, with the difference
    assert "| ovr | cifar10 | CLIP zero-shot | done |" in report and "| 98.50 |" in report
    assert "NOT COMPARABLE" in report
    # the figures are shown inline in report.html, and the instructions for a missing data set appear once
    srcs = images_resolve(out)
    assert {"ovr_table/figures/ovr_table.png", "fewshot/figures/fewshot.png"} <= set(srcs), srcs
    html = (out / "report.html").read_text()
    assert html.count("imagenet30 (needed by") == 1 and "Reproduced: " in html
    sources_untouched()


def test_empty_data_root_reports_every_item_missing(tmp_path):
    empty, out = tmp_path / "empty", tmp_path / "figs"
    empty.mkdir()
    r = eoe_figures("--scale", "smoke", "--out", str(out), "--data-root", str(empty))
    assert r.returncode == 0, r.stderr[-3000:]
    report = (out / "report.md").read_text()
    assert summary_status(report) == {name: "missing" for name in ITEMS}
    assert f"data set 'cifar10' not found under {empty.resolve()}" in report
    assert "Missing (not run; get the data or weights" in report
    assert report.count(f"cifar10' not found under {empty.resolve()}") == 1        # once, not once per row
    assert images_resolve(out) == []
    assert "(html" not in report and (out / "report.html").read_text().startswith("<!DOCTYPE html>")


def test_failing_notebook_is_named_and_others_still_run(tmp_path):
    nbs, empty, out = tmp_path / "nbs", tmp_path / "empty", tmp_path / "figs"
    shutil.copytree(NOTEBOOKS, nbs)
    empty.mkdir()
    nb = nbformat.read(nbs / "zeroshot_clip.ipynb", as_version=4)
    nb.cells.insert(2, nbformat.v4.new_code_cell('raise RuntimeError("deliberate failure for the test")'))
    nbformat.write(nb, nbs / "zeroshot_clip.ipynb")
    r = eoe_figures("--scale", "smoke", "--only", "zeroshot_clip", "other_datasets", "--notebooks", str(nbs),
                    "--out", str(out), "--data-root", str(empty))
    assert r.returncode == 1, r.stderr[-3000:]
    executed = out.resolve() / "executed" / "zeroshot_clip.ipynb"
    assert f"failed: zeroshot_clip: executed copy {executed}" in r.stderr
    assert executed.exists()
    assert json.loads((out / "other_datasets" / "result.json").read_text())["status"] == "missing"   # ran after the failure
    report = (out / "report.md").read_text()
    assert summary_status(report)["zeroshot_clip"] == "notebook failed"
    assert f"FAILED: the notebook raised RuntimeError: deliberate failure for the test. Open the executed copy {executed}" in report
    assert json.loads((out / "executed" / "status.json").read_text())["zeroshot_clip"]["status"] == "failed"


def test_bad_arguments_print_one_line(tmp_path):
    r = eoe_figures("--scale", "huge", "--out", str(tmp_path / "x"), timeout=300)
    assert (r.returncode, r.stderr) == (2, "error: unknown scale 'huge'; choose one of paper, cpu, smoke\n")
    assert not (tmp_path / "x").exists()


def test_dry_run_prints_gpu_and_cpu_time_per_item(tmp_path):
    "The plan's CPU time scales with the seconds per image of a --cpu-benchmark file; a bad file is one line."
    bench, totals = tmp_path / "cpu.json", []
    for seconds in (0.002, 0.004):
        bench.write_text(json.dumps({"some CPU": {"cnn32 3x32": seconds}}))
        r = eoe_figures("--scale", "cpu", "--dry-run", "--cpu-benchmark", str(bench), "--data-root", str(tmp_path),
                        timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
        items = [l for l in r.stdout.splitlines() if l.split(":")[0] in ITEMS]
        assert sorted(l.split(":")[0] for l in items) == sorted(ITEMS) and all("GPU" in l and "CPU" in l for l in items), r.stdout
        totals.append(float(r.stdout.splitlines()[-1].split("CPU")[1].split("h")[0]))
    assert totals[0] > 1 and abs(totals[1] / totals[0] - 2) < 0.01, totals
    bench.write_text('{"some CPU": {"cnn32 3x32": "fast"}}')
    r = eoe_figures("--scale", "cpu", "--dry-run", "--cpu-benchmark", str(bench), timeout=300)
    assert r.returncode == 2 and r.stderr.startswith(f"error: --cpu-benchmark {bench}: expected") and r.stderr.count("\n") == 1


@pytest.mark.parametrize("scale", ["cpu", "paper"])
def test_commented_paper_numbers_at_every_scale(tmp_path, scale):
    "paper_numbers.csv with '#' lines (at the top and between rows) is read by the notebooks and the report."
    lines = (NOTEBOOKS / "paper_numbers.csv").read_text().splitlines(keepends=True)
    header = next(i for i, l in enumerate(lines) if l.startswith("paper,"))
    lines.insert(header + 3, "# a comment between rows, with, more, commas, than, a, row, has, fields\n")
    numbers, empty, out = tmp_path / "numbers.csv", tmp_path / "empty", tmp_path / "figs"
    numbers.write_text("".join(lines))
    empty.mkdir()
    r = eoe_figures("--scale", scale, "--only", "ovr_table", "oe_table", "--out", str(out), "--data-root", str(empty),
                    EOE_PAPER_NUMBERS=str(numbers))
    assert r.returncode == 0, r.stderr[-3000:]
    report = (out / "report.md").read_text()
    assert {k: v for k, v in summary_status(report).items() if v != "not run"} == {"ovr_table": "missing",
                                                                                   "oe_table": "missing"}
    assert "| ovr | cifar10 | BCE-CLIP | missing |  | 99.60 |" in report, report          # its published number
