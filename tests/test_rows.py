import ast
import math
from pathlib import Path

import pytest

import segqual_lite
from segqual_lite import rows
from segqual_lite.config import get_profile


def test_the_papers_four_methods_and_seven_rows():
    assert rows.METHODS == ("max_prob", "mc_dropout", "hcnn", "lce")
    assert rows.TABLE_ROWS == (
        "rca",
        "qualitynet",
        "no_uncertainty",
        "max_prob",
        "mc_dropout",
        "hcnn",
        "lce",
    )
    assert rows.QUALITY_ROWS == rows.TABLE_ROWS[1:]
    assert set(rows.PAPER_TABLE1) == set(rows.TABLE_ROWS)
    assert all(len(v) == 5 for v in rows.PAPER_TABLE1.values())


def test_every_row_reads_a_registered_method_and_every_method_a_unet():
    for row in rows.ROW_REGISTRY.values():
        assert row.method in rows.METHOD_REGISTRY, row.name
        assert row.inputs in (None, "x*y", "x,y", "x,y,z")
        assert not row.crossfit or row.inputs == "x,y,z"
    for method in rows.METHOD_REGISTRY.values():
        assert method.unet in rows.UNET_HEADS
    assert rows.get_method("max_prob").unet == rows.get_method("mc_dropout").unet == "plain"
    assert rows.get_method("hcnn").head == "sigma" and rows.get_method("lce").head == "confidence"


def test_channels_labels_samples_and_map_scales():
    assert [rows.in_channels(r) for r in rows.QUALITY_ROWS] == [3, 4, 5, 5, 5, 5]
    with pytest.raises(ValueError, match="no quality network"):
        rows.in_channels("rca")
    with pytest.raises(ValueError, match="unknown row 'max-prob'"):
        rows.get_row("max-prob")
    with pytest.raises(ValueError, match="unknown method 'ensembles'.*tta"):
        rows.get_method("ensembles")
    assert rows.label("mc_dropout_crossfit") == "MC-dropout, cross-fitted"
    assert rows.label("ensemble") == "Deep ensemble" and rows.label("other") == "other"
    tiny = get_profile("tiny")
    assert rows.samples(tiny, "mc_dropout") == tiny.mc_samples
    assert rows.samples(tiny, "hcnn") == tiny.hcnn_samples
    assert rows.samples(tiny, "lce") is None and rows.samples(tiny, "tta") is None
    # Bounded maps: the largest value each can take, with two classes and with five.
    assert rows.map_maximum("max_prob") == 0.5 and rows.map_maximum("max_prob", 5) == 0.8
    assert rows.map_maximum("mc_dropout") == math.log(2)
    assert rows.map_maximum("ensemble", 5) == math.log(5)
    assert rows.map_maximum("lce", 5) == 1.0
    assert rows.map_maximum("hcnn") is None  # sigma is unbounded


def test_each_uncertainty_row_has_a_control_on_its_own_masks():
    assert {m: rows.control_of(m) for m in rows.METHODS} == {
        "max_prob": "no_uncertainty",
        "mc_dropout": "no_uncertainty_mc_dropout",
        "hcnn": "no_uncertainty_hcnn",
        "lce": "no_uncertainty_lce",
    }
    for row in rows.METHODS:
        control = rows.get_row(rows.control_of(row))
        assert control.method == rows.get_row(row).method and rows.in_channels(control.name) == 4
    assert set(rows.CONTROL_ROWS).isdisjoint(rows.TABLE_ROWS)
    with pytest.raises(ValueError, match="no control"):
        rows.control_of("max_prob_crossfit")


def test_chapter_12_s_row_lists_come_from_the_registry():
    from segqual_lite import deployment

    assert rows.ONE_PASS_METHODS == ("max_prob", "lce")
    assert rows.SHIFT_ROWS == ("no_uncertainty", "max_prob", "lce", "max_prob_image_mean")
    assert deployment.CONFORMAL_ROWS == rows.QUALITY_ROWS
    assert deployment.SHIFT_ROWS is rows.SHIFT_ROWS


def _names_listed(path: Path) -> list[tuple[int, list[str]]]:
    """Tuples, lists and sets written out in the file at ``path`` whose items are two or
    more registered row or method names, with their line numbers."""
    registered = set(rows.ROW_REGISTRY) | set(rows.METHOD_REGISTRY)
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Tuple | ast.List | ast.Set) and len(node.elts) >= 2:
            items = [e.value for e in node.elts if isinstance(e, ast.Constant)]
            if len(items) == len(node.elts) and set(items) <= registered:
                found.append((node.lineno, items))
    return found


def test_every_list_of_rows_or_methods_comes_from_the_registry():
    """Outside :mod:`segqual_lite.rows`, no module writes out a list of row or method
    names: a row added to the registry reaches every list without another edit."""
    listed = {
        str(path.relative_to(PACKAGE)): found
        for path in PACKAGE.rglob("*.py")
        if path.name != "rows.py" and (found := _names_listed(path))
    }
    assert listed == {}


# ---- the package's import graph ----------------------------------------------------------
PACKAGE = Path(segqual_lite.__file__).parent
# Bottom to top: a module may import only modules of earlier layers.
LAYERS = [
    {"seeds", "timing"},
    {"config"},
    {"rows"},
    {"store"},
    {"metrics", "models", "data"},
    {"uncertainty", "cost"},
    {"tables", "scores", "conformal", "provenance"},
    {"stats", "viz", "reference"},
    {"power", "lesions", "conclusions", "assemble"},
    {"regimes", "explorer"},
    {"training"},
    {"segment"},
    {"quality", "rca"},
    {"deployment"},
    {"scheduler", "results"},
    {"experiment"},
    {"cluster"},
    {"dryrun"},
    {"cli"},
    {"__main__"},
]


def _imports(path: Path) -> set[str]:
    """The package's top-level modules that the file at ``path`` imports, anywhere in it
    (inside functions too)."""
    here = path.relative_to(PACKAGE).parts[:-1]  # the file's package, inside ours
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = here[: len(here) - (node.level - 1)]
            resolved = (*base, *(node.module or "").split(".")) if node.module else base
            found.update([resolved[0]] if resolved else (a.name for a in node.names))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("segqual_lite"):
            parts = node.module.split(".")
            found.update([parts[1]] if len(parts) > 1 else (a.name for a in node.names))
        elif isinstance(node, ast.Import):
            found.update(
                a.name.split(".")[1] for a in node.names if a.name.startswith("segqual_lite.")
            )
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        top = path.relative_to(PACKAGE).with_suffix("").parts[0]
        if top != "__init__":
            graph.setdefault(top, set()).update(_imports(path) - {top})
    return graph


def test_modules_only_import_downwards_even_inside_functions():
    layer = {m: i for i, group in enumerate(LAYERS) for m in group}
    graph = _graph()
    assert set(graph) == set(layer), "a module is missing from the layers of this test"
    for module, imported in graph.items():
        for other in imported:
            assert layer[other] < layer[module], f"{module} imports {other} (up or sideways)"


def test_no_module_is_over_400_lines():
    lengths = {
        str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")
    }
    assert {name: n for name, n in lengths.items() if n > 400} == {}


def test_the_api_page_documents_every_module_in_import_order():
    """book/api.md lists the modules from the bottom of the package to the top."""
    import re

    text = (PACKAGE.parent / "book" / "api.md").read_text()
    listed = re.findall(r"automodule:: segqual_lite\.(\w+)", text)
    layer = {m: i for i, group in enumerate(LAYERS) for m in group}
    assert set(listed) == set(layer) - {"cli", "__main__"}
    assert [layer[m] for m in listed] == sorted(layer[m] for m in listed)
