"""The type stubs shipped in the wheel describe what the module really has."""

import ast
import inspect
from pathlib import Path

import ruac
from ruac import metrics


def stub(name):
    # the installed package's stubs (the wheel's copy), not the source tree's
    return ast.parse((Path(ruac.__file__).parent / name).read_text())


def functions(tree):
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}


def params(fn):
    return [a.arg for a in fn.args.args + fn.args.kwonlyargs if a.arg != "self"]


def test_metrics_stub_matches_the_module():
    fns = functions(stub("metrics.pyi"))
    assert set(fns) == set(metrics.__all__)
    for name, fn in fns.items():
        runtime = list(inspect.signature(getattr(metrics, name)).parameters)
        assert params(fn) == runtime, name


def test_package_stub_matches_the_classes():
    tree = stub("__init__.pyi")
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    assert set(classes) == {"Predictor", "Prediction"}
    methods = functions(classes["Predictor"])
    for name in ("from_checkpoint", "set_image", "predict"):
        runtime = list(inspect.signature(getattr(ruac.Predictor, name)).parameters)
        assert params(methods[name]) == [p for p in runtime if p != "self"], name
    properties = {n for n, f in methods.items() if any(getattr(d, "id", None) == "property" for d in f.decorator_list)}
    assert properties == {n for n, v in vars(ruac.Predictor).items() if inspect.isdatadescriptor(v)}
    fields = {n.target.id for n in classes["Prediction"].body if isinstance(n, ast.AnnAssign)}
    assert fields == {n for n, v in vars(ruac.Prediction).items() if inspect.isdatadescriptor(v)}
    assert (Path(ruac.__file__).parent / "py.typed").exists()
    assert "load_state_dict" in functions(tree)
