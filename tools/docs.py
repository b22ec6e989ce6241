"""README.md -> nbs/index.ipynb, and the HTML pages of every notebook, offline (no Quarto needed).

    python tools/docs.py index          # write nbs/index.ipynb from README.md (`make index`)
    python tools/docs.py html [OUT]     # every notebook of nbs/ and papers_figures/ as HTML in OUT (`make docs`: _docs)

README.md is the one file people edit. nbs/index.ipynb holds the same text, one markdown cell per `## ` section, so
nbdev (readme_nb = index.ipynb) and the docs' front page show the README; tests/test_docs.py checks that they agree.
The HTML pages come from `jupyter nbconvert`'s exporter without executing anything (the notebooks' stored outputs are
shown); the front page is the README followed by a table linking every notebook page, and every page links back.
"""
import hashlib
import html
import json
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS, PAPERS = "nbs", "papers_figures"
KERNELSPEC = {"display_name": "python3", "language": "python", "name": "python3"}


def readme_cells(text: str) -> list[str]:
    ("README.md as markdown cell sources: the title block (`# title` down to its `> summary`), the rest of the "
     "preamble, then one cell per `## ` section (a `## ` line inside a ``` block does not start one).")
    sections, fenced = [[]], False
    for line in text.splitlines():
        if line.startswith("```"): fenced = not fenced
        if line.startswith("## ") and not fenced: sections.append([])
        sections[-1].append(line)
    pre = sections[0]
    quote = next((i for i, line in enumerate(pre) if line.startswith(">")), None)
    if pre and pre[0].startswith("# ") and quote is not None:
        end = next((i for i in range(quote, len(pre)) if not pre[i].strip()), len(pre))
        sections[:1] = [pre[:end], pre[end:]]
    return [s for s in ("\n".join(c).strip("\n") for c in sections) if s.strip()]


def _cell_id(i: int, source: str) -> str:
    "A cell id that changes only when the cell's first line (its heading) or position does: regenerating keeps ids."
    return "md" + hashlib.sha1(f"{i}:{source.splitlines()[0]}".encode()).hexdigest()[:8]


def index_notebook(readme: str) -> dict:
    "nbs/index.ipynb as nbdev_clean leaves it: README.md's cells, nothing to execute."
    cells = [dict(cell_type="markdown", id=_cell_id(i, s), metadata={}, source=s.splitlines(keepends=True))
             for i, s in enumerate(readme_cells(readme))]
    return dict(cells=cells, metadata=dict(kernelspec=KERNELSPEC), nbformat=4, nbformat_minor=5)


def notebook_cells(nb: dict) -> list[str]:
    "The sources of a notebook's markdown cells (what README.md must equal), in order."
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in nb["cells"] if c["cell_type"] == "markdown"]


def write_index(root: Path = ROOT) -> Path:
    "Write nbs/index.ipynb from README.md, formatted as nbdev_clean writes notebooks."
    path = root / NBS / "index.ipynb"
    nb = index_notebook((root / "README.md").read_text(encoding="utf-8"))
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    # README.md no older than the index: nbdev_docs / nbdev_prepare (readme_nb, chk_time) then leave README.md alone
    os.utime(root / "README.md")
    return path


def title_and_summary(nb: dict, fallback: str) -> tuple[str, str]:
    "A notebook's `# Title` and `> summary` from its first markdown cell (nbdev's convention)."
    first = next((s for s in notebook_cells(nb)), "")
    title = re.search(r"^#\s+(\S.*?)\s*$", first, flags=re.MULTILINE)
    summary = re.search(r"^>\s+(\S.*?)\s*$", first, flags=re.MULTILINE)
    return (title.group(1) if title else fallback), (summary.group(1) if summary else "")


def pages(root: Path = ROOT) -> list[tuple[Path, str]]:
    "Every notebook to render and its page, relative to the docs folder: nbs/X.ipynb -> X.html, papers_figures/..."
    out = [(p, f"{p.stem}.html") for p in sorted((root / NBS).glob("*.ipynb"))]
    return out + [(p, f"{PAPERS}/{p.stem}.html") for p in sorted((root / PAPERS).glob("*.ipynb"))]


def _md(source: str) -> dict:
    import nbformat
    return nbformat.v4.new_markdown_cell(source)


def contents_cell(items: list[tuple[Path, str]]) -> dict:
    "The front page's table of every notebook page, with each notebook's title and summary."
    rows = {NBS: [], PAPERS: []}
    for path, page in items:
        if path.name == "index.ipynb": continue
        title, summary = title_and_summary(json.loads(path.read_text(encoding="utf-8")), path.stem)
        rows[path.parent.name].append(f"| [{path.stem}]({page}) | {title} | {summary.replace('|', '/')} |")
    head = "| notebook | title | summary |\n|---|---|---|\n"
    return _md("## Notebooks\n\nEvery notebook of `nbs/` (the package, lower numbers first) and of `papers_figures/` "
               "(one per table or figure of the papers, run by `eoe-figures`), rendered with its stored outputs.\n\n"
               f"### nbs/\n\n{head}" + "\n".join(rows[NBS]) + f"\n\n### papers_figures/\n\n{head}"
               + "\n".join(rows[PAPERS]))


def link_code_spans(page_html: str, targets: dict[str, str]) -> str:
    ("Turn inline code naming a notebook (`09_extending`, `nbs/09_extending.ipynb`, `papers_figures/fewshot.ipynb`) "
     "into a link to its page; `targets` maps each such name to the page's relative address.")
    def link(m: re.Match) -> str:
        href = targets.get(html.unescape(m.group(1)))
        inside_a_link = re.search(r"<a\s[^>]*>[^<]*$", page_html[max(0, m.start() - 300):m.start()])
        return f'<a href="{href}">{m.group(0)}</a>' if href and not inside_a_link else m.group(0)
    return re.sub(r"<code>([^<]{1,80})</code>", link, page_html)


def _targets(items: list[tuple[Path, str]], page: str) -> dict[str, str]:
    up = "../" * page.count("/")
    out = {}
    for path, target in items:
        if target == page: continue                   # no link from a page to itself
        rel = up + target
        out[f"{path.parent.name}/{path.name}"] = rel
        if path.parent.name == NBS: out[path.stem] = out[path.name] = rel
    return out


def build_docs(out: Path, root: Path = ROOT) -> list[Path]:
    "Render every notebook (not executed) into `out`, the front page first; returns the pages written."
    import nbformat
    from nbconvert import HTMLExporter
    # the notebooks are this project's own text: skip bleach's sanitising of every cell (half of the time)
    exporter = HTMLExporter(template_name="lab", filters={"clean_html": lambda text: text})
    items = pages(root)
    written = []
    for path, page in items:
        nb = nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
        up = "../" * page.count("/")
        if path.name == "index.ipynb": nb.cells.append(contents_cell(items))
        else: nb.cells.insert(0, _md(f"[eoe_nb]({up}index.html) · [all notebooks]({up}index.html#Notebooks) · "
                                     f"`{path.parent.name}/{path.name}`"))
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": path.stem}})
        dest = out / page
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(link_code_spans(body, _targets(items, page)), encoding="utf-8")
        written.append(dest)
    return written


def relative_links(page: Path) -> list[str]:
    "The relative addresses a page links to (no scheme, no bare #anchor), without their #anchor."
    hrefs = re.findall(r'<a\s[^>]*href="([^"]+)"', page.read_text(encoding="utf-8"))
    return [h.split("#")[0] for h in hrefs if not re.match(r"^([a-z][a-z0-9+.-]*:|#|//)", h) and h.split("#")[0]]


def main(argv: list[str]) -> int:
    if argv[:1] == ["index"]: print(f"wrote {write_index().relative_to(ROOT)} from README.md")
    elif argv[:1] == ["html"]:
        out = Path(argv[1] if len(argv) > 1 else ROOT / "_docs").resolve()
        n = len(build_docs(out))
        print(f"wrote {n} pages into {out}; open {out / 'index.html'}")
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__": sys.exit(main(sys.argv[1:]))
