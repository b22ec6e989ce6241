"""README.md is the one source of nbs/index.ipynb; `make docs` renders every notebook to HTML with working links
(offline, no Quarto); settings.ini holds what nbdev_docs needs; `make lab` registers the venv's kernel."""
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("eoe_docs_tool", ROOT / "tools" / "docs.py")
docs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(docs)


def test_index_notebook_is_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    index = json.loads((ROOT / "nbs" / "index.ipynb").read_text(encoding="utf-8"))
    assert docs.notebook_cells(index) == docs.readme_cells(readme), "README.md changed: run `make index`"
    assert index == docs.index_notebook(readme), "nbs/index.ipynb is not what `make index` writes: run `make index`"
    # the cells put together give the README back (only blank lines between sections may differ)
    squeeze = lambda s: re.sub(r"\n{2,}", "\n\n", s.strip())             # noqa: E731
    assert squeeze("\n\n".join(docs.notebook_cells(index))) == squeeze(readme)
    first = docs.notebook_cells(index)[0]
    assert first.startswith("# eoe_nb\n") and "\n> " in first                      # nbdev's title and summary


def test_readme_cells_split_at_sections_outside_code_blocks():
    text = "# t\n\n> s\n\nintro\n\n## A\n\n```bash\n## not a section\n```\n\n## B\nb\n"
    assert docs.readme_cells(text) == ["# t\n\n> s", "intro", "## A\n\n```bash\n## not a section\n```", "## B\nb"]


def test_every_notebook_keeps_the_generic_kernelspec():
    for path, _ in docs.pages():
        meta = json.loads(path.read_text(encoding="utf-8"))["metadata"]
        assert meta.get("kernelspec", {}).get("name") == "python3", f"{path}: kernelspec {meta.get('kernelspec')}"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs") / "_docs"
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "docs.py"), "html", str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    return out


def test_make_docs_renders_every_notebook_with_working_links(site):
    expected = docs.pages()
    assert len(expected) >= 40 and any(p.parent.name == "papers_figures" for p, _ in expected)
    for path, page in expected:
        assert (site / page).is_file(), f"{path} has no page {page}"
    index = site / "index.html"
    links = set(docs.relative_links(index))
    for path, page in expected:                              # the index links every page ...
        if path.name != "index.ipynb": assert page in links, f"the index does not link {page}"
    for link in links:                                       # ... and every link on it resolves
        assert (site / link).resolve().is_file(), f"index.html links {link}, which does not exist"
    ids = set(re.findall(r'id="([^"]+)"', index.read_text(encoding="utf-8")))
    assert "Notebooks" in ids                                # the anchor the pages link back to
    for path, page in expected:                              # each page links back to the index
        if path.name == "index.ipynb": continue
        back = {l for l in docs.relative_links(site / page) if (site / page).parent.joinpath(l).resolve() == index}
        assert back, f"{page} does not link back to index.html"
        for link in docs.relative_links(site / page):
            assert (site / page).parent.joinpath(link).resolve().is_file(), f"{page} links {link}, which does not exist"
    text = index.read_text(encoding="utf-8")
    assert "Numerics and packed runs" in text and "tutorial_cifar10.html" in text   # the README and a code-span link


def test_code_spans_naming_a_notebook_become_links():
    targets = {"09_extending": "09_extending.html", "papers_figures/fewshot.ipynb": "papers_figures/fewshot.html"}
    page = "<p>see <code>09_extending</code>, <code>papers_figures/fewshot.ipynb</code> and <code>other</code></p>"
    assert docs.link_code_spans(page, targets) == (
        '<p>see <a href="09_extending.html"><code>09_extending</code></a>, <a href="papers_figures/fewshot.html">'
        '<code>papers_figures/fewshot.ipynb</code></a> and <code>other</code></p>')
    linked = '<a href="x.html"><code>09_extending</code></a>'
    assert docs.link_code_spans(linked, targets) == linked                # already inside a link: left alone


def test_settings_hold_what_nbdev_docs_needs(tmp_path, monkeypatch):
    ("nbdev_docs (Quarto) first writes nbs/nbdev.yml and nbs/_quarto.yml from settings.ini (refresh_quarto_yml): "
     "run it on a copy of settings.ini and check the site it describes.")
    from nbdev.config import get_config
    from nbdev.quarto import refresh_quarto_yml
    (tmp_path / "settings.ini").write_text((ROOT / "settings.ini").read_text())
    (tmp_path / "nbs").mkdir()
    monkeypatch.chdir(tmp_path)
    get_config.cache_clear()
    try:
        refresh_quarto_yml()
        cfg = get_config()
    finally:
        get_config.cache_clear()
    nbdev_yml = (tmp_path / "nbs" / "nbdev.yml").read_text()
    assert "output-dir: _docs" in nbdev_yml and 'site-url: "https://eoe-nb.github.io/eoe_nb"' in nbdev_yml
    assert 'repo-url: "https://github.com/eoe-nb/eoe_nb"' in nbdev_yml and 'title: "eoe_nb"' in nbdev_yml
    assert "css: styles.css" in (tmp_path / "nbs" / "_quarto.yml").read_text()
    assert (ROOT / "nbs" / "styles.css").is_file()                       # the stylesheet _quarto.yml names
    assert (ROOT / "nbs" / cfg.readme_nb).is_file() and cfg.license == "mit" and cfg.doc_path.name == "_docs"
    assert "MIT License" in (ROOT / "LICENSE").read_text()


def test_make_lab_registers_the_venv_kernel(tmp_path):
    dry = subprocess.run(["make", "-n", "lab", f"KERNEL_FLAGS=--prefix {tmp_path}"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    (register,) = [line for line in lines if "ipykernel install" in line]
    assert any(re.search(r"\bjupyter lab\b", line) for line in lines)
    assert lines.index(register) < next(i for i, line in enumerate(lines) if "jupyter lab" in line)
    argv = shlex.split(register)
    argv[0] = sys.executable                                     # this interpreter stands in for $(VENV)/bin/python
    r = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    spec_file = tmp_path / "share" / "jupyter" / "kernels" / "eoe_nb" / "kernel.json"
    kernel = json.loads(spec_file.read_text())
    assert kernel["display_name"] == "eoe_nb (.venv)" and kernel["language"] == "python"
    assert Path(kernel["argv"][0]).resolve() == Path(sys.executable).resolve()
