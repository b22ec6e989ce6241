"""The run layer against hand computations: the Deep SVDD centre on un-normalised inputs (official), typed results."""
import numpy as np
import torch
from torch import nn

from eoe_nb.core import RunConfig
from eoe_nb.models import ModelSpec, register_model
from eoe_nb.run import prepare_objective, build_run


class ChannelMeans(nn.Module):
    """Features = per-channel mean of the input (plus a parameter that does not change them), so a centre is computable by hand."""
    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x.mean(dim=(2, 3)) + 0 * self.unused


register_model(ModelSpec("chanmeans", lambda a: ChannelMeans(), "per-channel means (test model)", image_size=32))


def svdd_config(data_root, **kw):
    return RunConfig(dataset="cifar10[0-1]", oe="none", objective="dsvdd", model="chanmeans", transform="noaug_cifar10",
                     epochs=1, milestones=[], batch_size=10, seeds=[0], workers=0, device="cpu", data_root=str(data_root), **kw)


def hand_center(images_uint8, batch_order, batch_size, normalise=None):
    """Mean over batches of the batch means of per-channel image means, then |c_j| < 0.1 -> +-0.1 (official rule)."""
    x = images_uint8.double() / 255
    if normalise is not None: x = (x - normalise[0].view(1, -1, 1, 1)) / normalise[1].view(1, -1, 1, 1)
    feats = x.mean(dim=(2, 3))[batch_order]
    means = [feats[i:i + batch_size].mean(0) for i in range(0, len(feats), batch_size)]
    c = torch.stack(means).mean(0)
    c[(c.abs() < 0.1) & (c < 0)] = -0.1
    c[(c.abs() < 0.1) & (c > 0)] = 0.1
    return c


def test_dsvdd_center_on_unnormalised_inputs(fake_data_root):
    run = build_run(svdd_config(fake_data_root), 0, 0)
    prepare_objective(run)
    train = run.ad.train
    images = train.images if train.images is not None else torch.stack([torch.from_numpy(np.asarray(train.pil(i))).permute(2, 0, 1) for i in range(len(train))])
    # the centre pass iterates the normal images in the order of the epoch-0 plan of its own BalancedBatches
    from eoe_nb.batches import BalancedBatches
    plan = BalancedBatches(train, None, 10, run.train_tf.without_normalisation(), "cpu", seed=run.train_seed, workers=0).epoch_plan(0)[0]
    expected = hand_center(images, torch.as_tensor(plan), 10)
    torch.testing.assert_close(run.objective.center.double(), expected, rtol=0, atol=1e-5)
    # the switch computes it on the normalised inputs instead
    run2 = build_run(svdd_config(fake_data_root, objective_args={"center_inputs": "normalised"}), 0, 0)
    prepare_objective(run2)
    expected2 = hand_center(images, torch.as_tensor(plan), 10, (run2.train_tf.mean.double(), run2.train_tf.std.double()))
    torch.testing.assert_close(run2.objective.center.double(), expected2, rtol=0, atol=1e-5)
    assert not torch.allclose(run.objective.center, run2.objective.center)


def test_train_only_folder_then_eoe_score(tmp_path, capsys):
    """A custom set with only train/ trains (official train_only_custom.py) and its checkpoint scores new images (eoe-score)."""
    from eoe_nb.cli import eoe_train_main
    from eoe_nb.core import run_cli
    from eoe_nb.score import eoe_score_main
    from eoe_nb.datasets import register_image_folder
    from eoe_nb.testing import write_fake_custom, write_fake_folder
    root = tmp_path / "data"
    write_fake_custom(root, train={"a": 4, "b": 4}, test=None, folder="trainonly", size=16)
    register_image_folder("trainonly", "trainonly", splits=("train",))
    out = tmp_path / "out"
    rc = run_cli(eoe_train_main, ["--dataset", "trainonly", "--classes", "0", "--oe", "gaussian", "--oe-size", "4", "--epochs", "1",
                                  "--batch-size", "4", "--seeds", "0", "--workers", "0", "--device", "cpu", "--data-root", str(root),
                                  "--out", str(out), "--quiet"])
    printed = capsys.readouterr()
    assert rc == 0, printed.err[-2000:]
    assert "preset custom (train_custom.py)" in printed.out and "without a test split" in printed.out
    assert (out / "runs" / "cls0_seed0" / "checkpoint.pt").exists() and not (out / "summary.json").exists()
    new = tmp_path / "new"
    write_fake_folder(new, "normal", {"x": 3}, size=16); write_fake_folder(new, "anomalous", {"y": 3}, size=16, seed=5)
    rc = run_cli(eoe_score_main, [str(out / "runs" / "cls0_seed0"), str(new), "--out", str(tmp_path / "scored")])
    printed = capsys.readouterr()
    assert rc == 0, printed.err[-2000:]
    assert "scored 6 of 6 image(s); AUROC" in printed.out
