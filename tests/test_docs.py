"""The documentation site builds with warnings as errors, holds the pages the
README promises, and the README links only to files in the repository."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_docs_build_strict_with_api_reference(tmp_path):
    site = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                        "-f", str(ROOT / "mkdocs.yml"), "-d", str(site)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr

    def text(page):
        return re.sub(r"<[^>]+>", "", (site / page / "index.html").read_text())

    transforms = text("api/transforms")
    for name in ("value_and_grad", "jacfwd", "hessian", "custom_vjp", "debug_nans", "to_torch"):
        assert f"{name}(" in transforms, name
    assert "jit(" in transforms and "vmap(" in transforms
    tree = text("api/tree")
    assert "map_with_path(" in tree and "stack(" in tree and "replace_fn" in tree
    assert "count_params(" in text("api/training") and "clip_by_global_norm(" in \
        text("api/training")
    assert "node_grads(" in text("api/tools") and "loss_curve(" in text("api/tools")
    # doctest examples are code, not Markdown links
    html = (site / "api/tree/index.html").read_text()
    assert "language-pycon" in html or "highlight" in html
    micrograd = text("coming-from-micrograd")
    for idiom, fm_form in (("Value(2.0", "fm.Var(2.0"), ("a.data", "a.value"),
                           ("backward()", "fm.grad(f)"), ("model.parameters()",
                                                          "fm.nn.parameters(model)"),
                           ("MLP(2, [16, 16, 1])", "fm.nn.MLP.init(2, [16, 16, 1]"),
                           ("zero_grad()", "fm.viz.node_grads")):
        assert idiom in micrograd and fm_form in micrograd, idiom
    assert "apt install graphviz" in text("sharp-bits")
    assert "Guards" in text("jit-and-vmap")


def test_readme_links_stay_inside_the_repository():
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)]+)\)", readme)
    local = [link.split("#")[0] for link in links if "://" not in link]
    assert local, "the README links to its docs"
    for link in local:
        target = (ROOT / link).resolve()
        assert target.is_relative_to(ROOT) and target.exists(), link
    assert "shared/CONTRACT" not in readme
