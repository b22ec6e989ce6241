"""Issue 12, the frequency filters: magnitude 0 is the identity, the centred spectrum is zero in the removed band and
unchanged elsewhere (by hand, against numpy's FFT, on 8x8 images), the official FILTER+PART parsing with one-line errors,
and `eoe-train --filters ... --filter-magnitude M` end to end (recorded in config.json; a bad filter refused before
anything is written)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from eoe_nb.core import ConfigError
from eoe_nb.filters import (DATA_PARTS, FILTER_KINDS, DataFilters, apply_filter, check_filters, dft_filter, filtered_spectrum,
                            minmax_norm, parse_filter, removed_band)

BIN = Path(sys.executable).parent


def image(seed=0, shape=(2, 3, 8, 8)):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def hand_band(kind, e, n=8):
    "The removed band of an n x n centred spectrum, written out by hand from the official GPU filters."
    r, c = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    if kind == "lpf": return (r < e) | (r >= n - e) | (c < e) | (c >= n - e)
    return (r >= n // 2 - e) & (r < n // 2 + e) & (c >= n // 2 - e) & (c < n // 2 + e)


@pytest.mark.parametrize("kind", FILTER_KINDS)
def test_magnitude_zero_is_the_identity(kind):
    x = image() * (255 if kind == "sharpen" else 1)
    assert torch.equal(apply_filter(kind, x, 0), x)
    assert DataFilters.parse([f"{kind}+{p}" for p in DATA_PARTS], 0).rows(torch.arange(4)) is None


@pytest.mark.parametrize("kind", ["lpf", "hpf"])
@pytest.mark.parametrize("e", [1, 2, 3])
def test_spectrum_zero_in_band_unchanged_elsewhere(kind, e):
    x = image(e)
    band = hand_band(kind, e)
    assert np.array_equal(removed_band(kind, 8, 8, e).numpy(), band)
    ref = np.fft.fftshift(np.fft.fft2(x.double().numpy()), axes=(-2, -1))         # independent reference: numpy
    spec = filtered_spectrum(x, kind, e).numpy()
    assert np.abs(spec[..., band]).max() == 0
    np.testing.assert_allclose(spec[..., ~band], ref[..., ~band], atol=1e-4)
    before = np.fft.ifft2(np.fft.ifftshift(np.where(band, 0, ref), axes=(-2, -1))).real  # what the official filter rescales
    np.testing.assert_allclose(dft_filter(x, kind, e, rescale=False).numpy(), before, atol=1e-5)
    lo, hi = before.reshape(2, -1).min(1)[:, None], before.reshape(2, -1).max(1)[:, None]
    np.testing.assert_allclose(dft_filter(x, kind, e).numpy().reshape(2, -1), (before.reshape(2, -1) - lo) / (hi - lo), atol=1e-5)


def test_minmax_is_per_image_over_all_channels():
    y = minmax_norm(image(5) * torch.tensor([1.0, 3.0]).view(2, 1, 1, 1))
    assert torch.allclose(y.flatten(1).min(1).values, torch.zeros(2)) and torch.allclose(y.flatten(1).max(1).values, torch.ones(2))


@pytest.mark.parametrize("spec,msg", [("lpf", "is not FILTER+PART"), ("lpf+oe", "unknown data part 'oe'"),
                                      ("highpass+train_oe", "unknown filter 'highpass'"), ("a+b+c", "is not FILTER+PART")])
def test_parse_errors_name_the_valid_choices(spec, msg):
    with pytest.raises(ConfigError) as e: parse_filter(spec)
    text = str(e.value)
    assert msg in text and "\n" not in text
    assert "filters: blur, sharpen, hpf, lpf" in text and "parts: train_nominal, train_oe, test_nominal, test_anomalous" in text


def test_official_readme_spec_parses():
    pairs = check_filters("lpf+train_oe lpf+train_nominal lpf+test_nominal lpf+test_anomalous".split(), 14)
    assert pairs == tuple(("lpf", p) for p in ("train_oe", "train_nominal", "test_nominal", "test_anomalous"))


def run(cmd, data_root):
    env = dict(os.environ, EOE_DATA=str(data_root), PYTHONWARNINGS="ignore")
    return subprocess.run([str(BIN / cmd[0]), *cmd[1:]], capture_output=True, text=True, env=env, timeout=300)


BASE = ["eoe-train", "--dataset", "cifar10[0-1]", "--oe", "cifar10[2-3]", "--classes", "0", "--epochs", "1", "--batch-size", "16",
        "--seeds", "0", "--workers", "0", "--device", "cpu", "--no-plots"]


def test_eoe_train_with_filters(fake_data_root, tmp_path):
    "A filtered run end to end through the command (the wiring itself is tested in nbs/04b_run.ipynb)."
    specs = ["lpf+train_oe", "lpf+train_nominal", "lpf+test_nominal", "lpf+test_anomalous"]
    r = run(BASE + ["--filters", *specs, "--filter-magnitude", "4", "--out", str(tmp_path / "lpf")], fake_data_root)
    assert r.returncode == 0, r.stderr[-3000:]
    cfg = json.loads((tmp_path / "lpf" / "config.json").read_text())["config"]
    assert cfg["filters"] == specs and cfg["filter_magnitude"] == 4


def test_eoe_train_refuses_a_bad_filter(fake_data_root, tmp_path):
    bad = tmp_path / "bad"
    r = run(BASE + ["--filters", "lpf+train_normal", "--filter-magnitude", "4", "--out", str(bad)], fake_data_root)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "unknown data part 'train_normal'" in r.stderr and "train_nominal" in r.stderr
    assert not bad.exists()
