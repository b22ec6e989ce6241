"""Packed training (issue 13): K runs trained as one stacked model equal the K sequential runs (HSC, BCE, Deep SVDD),
a diverging run leaves the others unchanged and gets the official retry, and a killed packed group resumes exactly."""
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from eoe_nb.core import RunConfig
from eoe_nb.evaluate import evaluate_scores
from eoe_nb.objectives import HSC, OBJECTIVES, register_objective
from eoe_nb.packed import train_and_score_packed, train_packed
from eoe_nb.run import build_run, score_images, train_and_score
from eoe_nb.testing import write_fake_cifar10_folder
from eoe_nb.train import NonFiniteError

UNITS = [(0, 0), (1, 0), (0, 1)]          # two classes, two seeds


@pytest.fixture(scope="module")
def root():
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as d: yield write_fake_cifar10_folder(d, n_train=12, n_test=4)


def config(root, objective="hsc", **kw):
    # lr 3e-5: the official CNNs' convolution and linear biases before BatchNorm have a gradient of exactly zero in exact
    # arithmetic; Adam turns its rounding noise into steps of ~lr, so at the official lr 1e-3 two fp32 summation orders
    # differ by ~1e-4 in the scores after 4 steps (packed vs sequential 3e-4; sequential 1 vs 2 threads 9e-5).
    no_oe = objective == "dsvdd"
    return RunConfig(dataset="cifar10[0-4]", oe="none" if no_oe else "cifar10[5-9]", oe_size=None if no_oe else 20,
                     objective=objective, epochs=2, milestones=[1], batch_size=8, lr=3e-5, workers=0, device="cpu",
                     data_root=str(root), **kw)


def assert_same_run(packed, seq):
    scale = max(1.0, float(np.abs(seq.scores).max()))           # Deep SVDD scores are distances (~20 here)
    np.testing.assert_allclose(packed.scores, seq.scores, rtol=0, atol=1e-4 * scale)
    auroc = lambda o: round(evaluate_scores(o.labels, o.scores)["auroc"], 4)
    assert auroc(packed) == auroc(seq)
    np.testing.assert_allclose(packed.losses, seq.losses, rtol=1e-4)
    assert packed.attempts == seq.attempts


@pytest.mark.parametrize("objective", ["hsc", "bce", "dsvdd"])
def test_packed_equals_sequential(root, objective):
    cfg = config(root, objective)
    packed = train_and_score_packed([(cfg, c, s) for c, s in UNITS], progress=False, keep_run=objective == "dsvdd")
    seq = [train_and_score(cfg, c, s, progress=False, keep_run=objective == "dsvdd") for c, s in UNITS]
    for p, s in zip(packed, seq): assert_same_run(p, s)
    # the test can fail: another seed's run differs far more than the tolerance
    assert np.abs(seq[0].scores - seq[2].scores).max() > 1e-2 * max(1.0, float(np.abs(seq[0].scores).max()))
    if objective == "dsvdd":                                     # each run keeps its own centre, computed before training
        for p, s in zip(packed, seq): torch.testing.assert_close(p.run.objective.center, s.run.objective.center)


def test_diverging_run_leaves_the_others(root):
    cfg = config(root)
    clean = [build_run(cfg, c, s) for c, s in UNITS]
    assert train_packed(clean, progress=False) == [None] * 3
    runs = [build_run(cfg, c, s) for c, s in UNITS]
    with torch.no_grad(): runs[1].model.conv1.weight[0, 0, 0, 0] = float("nan")      # run 1 diverges from its first step
    errors = train_packed(runs, progress=False)
    assert errors[0] is None and errors[2] is None and isinstance(errors[1], NonFiniteError)
    for k in (0, 2):                                             # bit for bit what they do without the diverging run
        np.testing.assert_array_equal(score_images(runs[k].detector, runs[k].ad.test), score_images(clean[k].detector, clean[k].ad.test))


class _DivergingHSC(HSC):
    "HSC whose loss is NaN when class 1 is normal: every attempt of that run diverges."
    name = "hsc_diverging_test"
    def __init__(self, diverge: bool = False): self.diverge = diverge
    @classmethod
    def build(cls, args=None, context=None): return cls(1 in context.normal_classes)
    def loss(self, outputs, labels):
        loss = super().loss(outputs, labels)
        return loss * float("nan") if self.diverge else loss


def test_official_retry_per_run(root):
    register_objective(_DivergingHSC)
    try:
        cfg = config(root, "hsc_diverging_test", nan_retries=2)
        out = train_and_score_packed([(cfg, c, s) for c, s in UNITS], progress=False)
        assert isinstance(out[1], NonFiniteError) and "all 2 attempts" in str(out[1])
        with pytest.raises(NonFiniteError, match="all 2 attempts"): train_and_score(cfg, 1, 0, progress=False)
        for k in (0, 2): assert_same_run(out[k], train_and_score(cfg, *UNITS[k], progress=False))
    finally: OBJECTIVES.remove(_DivergingHSC.name)


class _KilledAt:
    "The batches of a run, killed (KeyboardInterrupt) when epoch `at` starts."
    def __init__(self, batches, at): self.batches, self.at, self.epoch = batches, at, 0
    def set_epoch(self, epoch): self.epoch = epoch; self.batches.set_epoch(epoch)
    def __iter__(self):
        if self.epoch == self.at: raise KeyboardInterrupt
        return iter(self.batches)


def test_packed_resume_after_kill(root):
    cfg = config(root).replace(epochs=3, milestones=[1])
    whole = train_and_score_packed([(cfg, c, s) for c, s in UNITS], progress=False)
    with tempfile.TemporaryDirectory() as d:
        dirs = [Path(d) / f"run{i}" for i in range(3)]
        for p in dirs: p.mkdir()
        runs = [build_run(cfg, c, s) for c, s in UNITS]
        runs[2].setup.batches = _KilledAt(runs[2].setup.batches, 2)
        with pytest.raises(KeyboardInterrupt): train_packed(runs, [p / "checkpoint.pt" for p in dirs], progress=False)
        resumed = train_and_score_packed([(cfg, c, s) for c, s in UNITS], run_dirs=dirs, progress=False)
    for w, r in zip(whole, resumed):
        np.testing.assert_allclose(r.scores, w.scores, rtol=0, atol=1e-6)
        np.testing.assert_allclose(r.losses, w.losses, rtol=1e-6)
        assert len(r.epoch_seconds) == 3
