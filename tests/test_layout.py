"""The package's promises about its own layout: core never imports Streamlit, importing does nothing
heavy, and pages never call Earth Engine or TensorFlow directly."""

import ast
import os
import subprocess
import sys
from pathlib import Path

from testdata import ROOT

CORE = ROOT / "core"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_core_never_imports_streamlit():
    files = list(CORE.rglob("*.py"))
    assert len(files) > 20 and CORE / "ee" / "auth.py" in files  # the scan sees the package, subpackages too
    offenders = [str(p.relative_to(ROOT)) for p in files if {"streamlit", "pages"} & _imports(p)]
    assert offenders == []


def test_pages_do_not_call_ee_or_tf():
    pages = list((ROOT / "pages").rglob("*.py")) + [ROOT / "app.py"]
    assert ROOT / "pages" / "predict.py" in pages and ROOT / "pages" / "components" / "mapview.py" in pages
    offenders = [str(p.relative_to(ROOT)) for p in pages if {"ee", "tensorflow", "keras"} & _imports(p)]
    assert offenders == []
    for p in pages:
        text = p.read_text()
        assert "ee.Initialize" not in text and "tf." not in text, p


def test_light_modules_import_without_tensorflow_or_ee():
    code = ("import sys; import core, core.grid, core.bands, core.reflectance, core.raster, core.resample, core.labels, core.metrics, "
            "core.geometry, core.lonlat, core.geojson, core.bbox, core.region, core.region_check, core.overlays, "
            "core.card, core.predict, core.patches, core.patchset, core.config, core.sources.local, core.ee.auth, core.ee.composites; "
            "import os; print(sorted(m for m in ('tensorflow', 'ee', 'streamlit', 'keras') if m in sys.modules), "
            "os.environ.get('TF_CPP_MIN_LOG_LEVEL'))")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "[] None"  # nor do they set the user's environment


def test_the_model_modules_load_tensorflow_without_a_word():
    """The Model page imports core.dataset: TensorFlow's two start-up notices were printed to the
    server's console, twice."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    out = subprocess.run([sys.executable, "-c", "import core.dataset, core.train, core.patches, core.ee.upload"],
                         cwd=ROOT, capture_output=True, text=True, check=True, env=env)
    assert out.stderr == ""


def test_pages_import_nothing_that_loads_tensorflow_before_they_draw():
    """The Model page imported core.model at its top: Keras loaded (3-7 s) before its title, and a first
    visit showed a blank page that looked hung. What the pages import at their top loads no TensorFlow;
    a page imports it where it is needed, under a spinner."""
    modules = set()
    for p in [*(ROOT / "pages").rglob("*.py"), ROOT / "app.py"]:
        for node in ast.parse(p.read_text()).body:  # (module level only)
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("core", "pages"):
                modules |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}  # (modules or not)
    assert {"core.jobs", "core.card", "pages.components.models"} <= modules
    code = ("import importlib, sys\n"
            "for m in sys.argv[1:]:\n"
            "    try:\n"
            "        importlib.import_module(m)\n"
            "    except ModuleNotFoundError as e:\n"
            "        if e.name != m:\n"  # (a function's or a constant's name: no module)
            "            raise\n"
            "print(sorted(m for m in ('tensorflow', 'keras', 'pages.components.models') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, *sorted(modules)], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['pages.components.models']"  # (the scan imports what the pages import)


def test_the_pages_headings_form_an_outline_for_a_screen_reader():
    """One h1 per page (its title), sections as h2 under it, no heading before it: the sidebar's
    "### Status" came before every page's h1, st.subheader made h3s under the h1 (a level skipped), and
    each title carried a link without a name."""
    files = list((ROOT / "pages").rglob("*.py")) + [ROOT / "app.py"]
    titles, problems = 0, []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            name, where = node.func.attr, f"{path.relative_to(ROOT)}:{node.lineno}"
            anchor = next((k.value for k in node.keywords if k.arg == "anchor"), None)
            if name in ("title", "header"):
                titles += name == "title"
                if not (isinstance(anchor, ast.Constant) and anchor.value is False):
                    problems.append(f"{where}: st.{name} without anchor=False")
            elif name == "subheader":
                problems.append(f"{where}: st.subheader (an h3 under the page's h1)")
            elif name == "markdown" and node.args and isinstance(node.args[0], ast.Constant) and \
                    str(node.args[0].value).lstrip().startswith("#"):
                problems.append(f"{where}: a markdown heading")
    assert titles == 6 and problems == []
