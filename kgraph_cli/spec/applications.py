"""`application:` nodes: a keras.applications model by name (ResNet50...), checked
against the catalog of constructors without importing TensorFlow; where a
`weights:` file named by the spec is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kgraph_cli.errors import Reporter
from kgraph_cli.layers import catalog_data
from kgraph_cli.spec.model import ApplicationSpec, InputForm, ModelSpec, NodeSpec
from kgraph_cli.suggest import did_you_mean

# What keras.Model.load_weights reads (a `.h5` may be Keras 2's format, as
# the ImageNet files are).
WEIGHT_SUFFIXES = (".weights.h5", ".h5", ".keras")
POOLING = ("avg", "max")
# Arguments kgraph sets from the node itself.
SET_FROM_NODE = {
    "input_tensor": "an application is called on its `from:` tensor",
    "input_shape": "an application's input shape is its `from:` input's shape",
    "name": "an application is named by its node's key",
}
APPLICATIONS_URL = "https://keras.io/api/applications/"


def applications_catalog() -> dict[str, Any]:
    """keras.applications constructors by name: params, defaults, module."""
    return catalog_data()["applications"]


def weights_file(app: ApplicationSpec) -> Path | None:
    """The file `weights:` names, relative to the spec file that says it; None
    for `imagenet` and `null`."""
    value = app.weights()
    if not isinstance(value, str) or value == "imagenet":
        return None
    base = Path(app.args.value_loc("weights").file).parent
    return (base / Path(value).expanduser()).resolve()


def argument(app: ApplicationSpec, name: str) -> Any:
    """An argument as written, else the constructor's default."""
    if name in app.args:
        return app.args[name]
    return applications_catalog().get(app.name, {}).get("defaults", {}).get(name)


def check_application(reporter: Reporter, model: ModelSpec, node: NodeSpec) -> None:
    app = node.application
    assert app is not None
    path = model.key_path("layers", node.name)
    catalog = applications_catalog()
    entry = catalog.get(app.name)
    if entry is None:
        reporter.error(
            "unknown-application",
            f"keras.applications has no model '{app.name}'",
            app.loc,
            f"{path}.application",
            did_you_mean(app.name, catalog, f"see {APPLICATIONS_URL} for the models"),
        )
        return
    if node.input_form is not InputForm.SINGLE or len(node.inputs) != 1:
        reporter.error(
            "type",
            f"{app.name} takes one image input",
            node.loc,
            f"{path}.from",
            "write `from: <the image input or node>`",
        )
    for arg in app.args:
        loc = app.args.value_loc(arg)
        if arg in SET_FROM_NODE:
            reporter.error(
                "layer-arg",
                f"`{arg}` is not an argument here: {SET_FROM_NODE[arg]}",
                app.args.key_loc(arg),
                f"{path}.{arg}",
                "remove it" + (" and rename the node" if arg == "name" else ""),
            )
        elif arg not in entry["params"]:
            reporter.error(
                "unknown-arg",
                f"{app.name} has no argument '{arg}'",
                app.args.key_loc(arg),
                f"{path}.{arg}",
                did_you_mean(arg, set(entry["params"]) - set(SET_FROM_NODE)),
            )
        elif arg == "pooling" and app.args[arg] is not None and app.args[arg] not in POOLING:
            reporter.error(
                "unknown-value",
                f"pooling must be avg, max or null, not {app.args[arg]!r}",
                loc,
                f"{path}.pooling",
                "avg: global average pooling of the last feature map (the usual choice)",
            )
    _check_weights(reporter, app, path)


def _check_weights(reporter: Reporter, app: ApplicationSpec, path: str) -> None:
    value = app.weights()
    wpath = f"{path}.weights"
    if value is not None and not isinstance(value, str):
        reporter.error(
            "type",
            f"weights must be imagenet, null or a file, not {value!r}",
            app.args.value_loc("weights"),
            wpath,
            "e.g. `weights: imagenet` (pretrained), `weights: null` (random) or "
            "`weights: backbone.weights.h5`",
        )
        return
    if value == "imagenet":
        if argument(app, "include_top") is True and argument(app, "classes") != 1000:
            reporter.error(
                "weights",
                f"{app.name}'s ImageNet top has 1000 classes, not {argument(app, 'classes')}",
                app.args.value_loc("classes"),
                f"{path}.classes",
                "set `include_top: false` (with `pooling: avg`) and add your own head, "
                "or `weights: null` to train the top from scratch",
            )
        return
    file = weights_file(app)
    if file is None:
        return
    if not file.name.endswith(WEIGHT_SUFFIXES):
        reporter.error(
            "weights",
            f"cannot load weights from '{file.name}'",
            app.args.value_loc("weights"),
            wpath,
            "name a " + ", ".join(WEIGHT_SUFFIXES) + " file (model.save_weights writes "
            ".weights.h5)",
        )
    elif not file.is_file():
        reporter.error(
            "weights",
            f"weights file '{app.weights()}' does not exist",
            app.args.value_loc("weights"),
            wpath,
            "paths are relative to the file that names them; `weights: imagenet` gives "
            "Keras's pretrained weights",
        )
