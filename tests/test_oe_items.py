"""The OE paper items (issue 20): Table 1 with every OOD score `eoe-oe test` computes (MSP as the paper, cross-entropy
to uniform and energy as marked extras, published values for MSP only), its rows through result.json and the report,
and the paper's claims judged on the item's rows."""
import json

import pandas as pd
import pytest
import torch

from eoe_nb.claims import Claim, Verdict
from eoe_nb.oe_eval import OOD_SCORES
from eoe_nb.oe_items import PAPER_SCORE, OERow, oe_item_plan, oe_results_table, run_oe_item, write_oe_item_outputs
from eoe_nb.paper_items import ResultRow, RowStatus, markdown_table
from eoe_nb.report import render_markdown, report_blocks
from eoe_nb.testing import write_fake_cifar_pickles


@pytest.fixture(scope="module")
def table_item(tmp_path_factory):
    "The smoke oe_table on a fake CIFAR-10 with the tiny classifier: (out folder, rows, result)."
    torch.set_num_threads(1)
    from eoe_nb.oe_train import register_tiny_classifier
    register_tiny_classifier()
    root = tmp_path_factory.mktemp("oe_items")
    write_fake_cifar_pickles(root / "data", n_train=250, n_test=600)
    plan = oe_item_plan("oe_table", "smoke", data_root=root / "data", model="tiny_classifier")
    out = root / "out" / "oe_table"
    rows = run_oe_item(plan, out, progress=False)
    res = write_oe_item_outputs(plan, out, rows, {"oe_table": oe_results_table(rows)})
    return out, rows, res


def test_every_score_msp_first(table_item):
    _, rows, _ = table_item
    assert all(r.status == RowStatus.done for r in rows), [(r.label, r.error) for r in rows]
    assert list(dict.fromkeys(r.score for r in rows)) == [PAPER_SCORE] + [s for s in OOD_SCORES if s != PAPER_SCORE]
    blocks = [r.score for i, r in enumerate(rows) if i == 0 or r.score != rows[i - 1].score]
    assert blocks == [PAPER_SCORE] + [s for s in OOD_SCORES if s != PAPER_SCORE]   # one block of rows per score
    keys = {(r.dataset_spec, r.method, r.ood) for r in rows}
    for s in OOD_SCORES:                                          # each score has the same rows as MSP
        assert {(r.dataset_spec, r.method, r.ood) for r in rows if r.score == s} == keys
    assert len({r.label for r in rows}) == len(rows)              # labels tell the scores apart
    assert all("extra: not in the paper" in r.label and not r.published for r in rows if r.extra)
    table = oe_results_table(rows)
    assert set(table["score"]) == {"MSP", "cross-entropy to uniform (extra: not in the paper)",
                                   "energy (extra: not in the paper)"}


def test_extra_scores_differ_from_msp(table_item):
    "The extra rows hold their own score's numbers, not copies of the MSP row."
    _, rows, _ = table_item
    by = {(r.method, r.ood, r.score): r.auroc for r in rows}
    assert any(by[m, o, "energy"] != by[m, o, PAPER_SCORE] for m, o, s in by if s == PAPER_SCORE)


def test_rows_round_trip_and_render(table_item):
    out, rows, res = table_item
    saved = json.loads((out / "result.json").read_text())
    assert [OERow.from_dict(d) for d in saved["oe_rows"]] == rows
    assert [ResultRow.from_dict(d) for d in saved["rows"]] == [r.to_result_row() for r in rows]
    assert saved["columns"] == ["FPR95", "AUROC", "AUPR", "test error"]
    md = render_markdown(report_blocks(out.parent, ["oe_table"]))
    for r in rows: assert r.label.replace("|", "\\|") in md
    assert "energy score (extra: not in the paper)" in md


def _by_hand(rows, per_set: bool) -> list[float]:
    "FPR95 of the baseline minus the OE fine-tune's on each OOD set (or the mean row), MSP rows."
    v = {(r.method, r.ood): r.fpr95 for r in rows if r.score == "msp" and (r.ood != "mean") == per_set}
    return [v["msp", o] - v["oe_finetune", o] for m, o in v if m == "msp"]


def test_claims_judged_on_the_rows(table_item):
    _, rows, res = table_item
    claims = {c["key"]: Claim.from_dict(c) for c in res["claims"]}
    assert list(claims) == ["fpr95_drop", "fpr95_sets"]
    drop, share = _by_hand(rows, False), _by_hand(rows, True)
    assert claims["fpr95_drop"].value == pytest.approx(drop[0])
    assert claims["fpr95_sets"].value == pytest.approx(sum(d > 0 for d in share) / len(share))
    assert claims["fpr95_drop"].verdict == (Verdict.holds if drop[0] >= 2 else Verdict.fails)
    assert claims["fpr95_sets"].verdict == (Verdict.holds if sum(d > 0 for d in share) / len(share) >= 0.75
                                            else Verdict.fails)
    assert "fpr95_drop" in markdown_table(pd.DataFrame(res["claims"]))   # the notebook's claims table


def test_claims_untestable_without_runs(tmp_path):
    plan = oe_item_plan("oe_calibration", "paper", data_root=tmp_path / "nothing")
    res = write_oe_item_outputs(plan, tmp_path, plan.missing, {})
    assert [(c["key"], c["verdict"]) for c in res["claims"]] == [("rms_drop", Verdict.untestable.value)]
    assert "no finished pair" in res["claims"][0]["why"]
