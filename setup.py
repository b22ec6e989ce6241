"""Packaging for eoe_nb: everything is read from settings.ini (nbdev 2 convention)."""
from configparser import ConfigParser
from pathlib import Path

import setuptools

config = ConfigParser(delimiters=["="])
config.read(Path(__file__).parent / "settings.ini", encoding="utf-8")
cfg = config["DEFAULT"]

requirements = cfg.get("requirements", "").split()
dev_requirements = cfg.get("dev_requirements", "").split()
console_scripts = [s.strip() for s in cfg.get("console_scripts", "").splitlines() if s.strip()]

setuptools.setup(
    name=cfg["lib_name"],
    version=cfg["version"],
    description=cfg["description"],
    long_description=(Path(__file__).parent / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    author=cfg["author"],
    license="MIT",
    # papers_figures/ (the item notebooks and paper_numbers.csv) ships inside the package as eoe_nb/papers_figures,
    # so that eoe-figures runs from a wheel without a checkout (eoe_nb.paper_items.default_notebooks_dir finds it)
    packages=setuptools.find_packages(include=["eoe_nb", "eoe_nb.*"]) + ["eoe_nb.papers_figures"],
    package_dir={"eoe_nb.papers_figures": "papers_figures"},
    include_package_data=True,
    package_data={"eoe_nb": ["*.json", "*.csv"], "eoe_nb.papers_figures": ["*.ipynb", "*.csv"]},
    python_requires=">=" + cfg["min_python"],
    install_requires=requirements,
    extras_require={"dev": dev_requirements},
    entry_points={"console_scripts": console_scripts, "nbdev": [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
    zip_safe=False,
)
