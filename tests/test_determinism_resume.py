"""Same seed, same scores on the CPU; an interrupted run resumes from its checkpoint to the same result."""
import numpy as np
import pytest

import eoe_nb.train as train_mod
from eoe_nb.core import RunConfig
from eoe_nb.runner import ResultsStore, run_unit


def tiny_config(data_root, **kw) -> RunConfig:
    base = dict(dataset="cifar10[0-1]", mode="ovr", oe="cifar10[2-3]", oe_size=10, objective="hsc", model="cnn32",
                epochs=3, milestones=[2], batch_size=16, seeds=[0], workers=0, device="cpu", data_root=str(data_root))
    base.update(kw)
    return RunConfig(**base)


def scores_of(out, c=0, s=0):
    return ResultsStore(out).scores(f"cls{c}_seed{s}")["scores"]


def test_same_seed_same_scores(fake_data_root, tmp_path):
    cfg = tiny_config(fake_data_root)
    for name in ("a", "b"): run_unit(cfg, 0, 0, tmp_path / name, progress=False, plots=False)
    run_unit(cfg, 0, 1, tmp_path / "c", progress=False, plots=False)
    np.testing.assert_array_equal(scores_of(tmp_path / "a"), scores_of(tmp_path / "b"))
    assert not np.array_equal(scores_of(tmp_path / "a"), scores_of(tmp_path / "c", s=1))


def test_interrupted_run_resumes_to_the_same_result(fake_data_root, tmp_path, monkeypatch):
    cfg = tiny_config(fake_data_root)
    run_unit(cfg, 0, 0, tmp_path / "whole", progress=False, plots=False)

    saves = []
    real_save = train_mod.atomic_torch_save
    def save_then_interrupt(obj, path):                     # the process dies right after the first epoch's checkpoint
        real_save(obj, path); saves.append(obj.get("epoch"))
        if len(saves) == 1: raise KeyboardInterrupt
    monkeypatch.setattr(train_mod, "atomic_torch_save", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_unit(cfg, 0, 0, tmp_path / "cut", progress=False, plots=False)
    assert not ResultsStore(tmp_path / "cut").is_finished("cls0_seed0")
    assert (tmp_path / "cut" / "runs" / "cls0_seed0" / "checkpoint.pt").exists()

    run_unit(cfg, 0, 0, tmp_path / "cut", progress=False, plots=False)
    assert saves[1] == 1                                     # resumed at epoch 1, not from scratch
    np.testing.assert_allclose(scores_of(tmp_path / "cut"), scores_of(tmp_path / "whole"), rtol=0, atol=1e-6)
