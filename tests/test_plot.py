"""`kgraph plot`: Graphviz images, DOT, Mermaid, the terminal tree, training curves.

Expected nodes and edges come from the Keras model itself (its functional
graph), not from kgraph's graph description, so a renderer that drops an
edge or a layer fails here.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

from kgraph_cli.cli import app
from tests.conftest import SPECS

# pydot's parser uses pyparsing names that pyparsing 3.3 deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:'\\w+' deprecated:DeprecationWarning")
needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None,
    reason="Graphviz's `dot` is not installed (make install installs it as root with "
    "apt-get; or apt-get install graphviz)",
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HISTORY = {
    "loss": [1.2, 0.8, 0.5],
    "accuracy": [0.5, 0.7, 0.8],
    "val_loss": [1.3, 0.9, 0.7],
    "val_accuracy": [0.45, 0.65, 0.75],
}


@cache
def built(spec: str) -> object:
    """The spec's default model, built once per test session."""
    from kgraph_cli.build import ModelBuilder
    from kgraph_cli.spec.validate import validate_spec

    valid = validate_spec(SPECS / spec)
    return ModelBuilder(valid).build()


def keras_edges(model: object) -> Counter:
    """(producer, consumer) layer names of every tensor in the model's graph."""
    relevant = {id(n) for nodes in model._nodes_by_depth.values() for n in nodes}
    edges: Counter = Counter()
    for layer in model._operations:
        for node in layer._inbound_nodes:
            if id(node) in relevant:
                for tensor in node.input_tensors:
                    edges[(tensor._keras_history.operation.name, layer.name)] += 1
    return edges


def layer_names(model: object) -> list[str]:
    return [layer.name for layer in model._operations]


def output_shapes(model: object) -> list[str]:
    shapes = []
    for layer in model._operations:
        for tensor in layer._inbound_nodes[0].output_tensors:
            dims = ", ".join("None" if d is None else str(d) for d in tensor.shape)
            shapes.append(f"({dims},)" if len(tensor.shape) == 1 else f"({dims})")
    return shapes


def plot(runner, *args: object):
    return runner.invoke(app, ["plot", *map(str, args)])


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def dot_graph(text: str):
    import pydot

    graphs = pydot.graph_from_dot_data(text)
    assert graphs, "pydot cannot parse the DOT output"
    return graphs[0]


def dot_nodes(graph) -> list:
    """Every drawn node, in clusters too (not the bare names of `{rank=source; ...}`)."""
    nodes = [
        n
        for n in graph.get_nodes()
        if n.get("label") is not None and n.get_name() not in ("graph", "node", "edge")
    ]
    for sub in graph.get_subgraphs():
        nodes += dot_nodes(sub)
    return nodes


def dot_edges(graph) -> list:
    """Every drawn edge (the invisible ones only order the inputs)."""
    edges = [e for e in graph.get_edges() if e.get("style") != "invis"]
    for sub in graph.get_subgraphs():
        edges += dot_edges(sub)
    return edges


def unquote(name: str) -> str:
    return name[1:-1] if name.startswith('"') else name


MERMAID_NODE = re.compile(r'^\s*(\w+)(?:\(\[|\[\[|\[)"<b>([^<]*)</b>')
MERMAID_EDGE = re.compile(r"^\s*(\w+) -->(?:\|([^|]*)\|)? (\w+)$")


def mermaid_edges(text: str) -> Counter:
    names = {m[1]: m[2] for m in map(MERMAID_NODE.match, text.splitlines()) if m}
    edges: Counter = Counter()
    for match in filter(None, map(MERMAID_EDGE.match, text.splitlines())):
        edges[(names[match[1]], names[match[3]])] += 1
    return edges


# -- Graphviz images -------------------------------------------------------------


@needs_dot
@pytest.mark.tf
@pytest.mark.parametrize(
    "spec",
    [
        "ticket_router.yaml",
        "autoencoder_nested.yaml",
        "siamese.yaml",
        "video_mlp.yaml",
        "toy_resnet_blocks.yaml",
    ],
)
def test_png_is_a_valid_image(runner, tmp_path, spec):
    out = tmp_path / "model.png"
    result = plot(runner, SPECS / spec, "-o", out, "--show-shapes")
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.stdout
    width, height = png_size(out)
    assert 100 <= width <= 5000 and 150 <= height <= 8000, (width, height)
    from PIL import Image

    with Image.open(out) as image:
        image.verify()
    # Deeper graphs are taller: one box per layer, top to bottom.
    layers = len(built(spec)._operations)
    assert height > 40 * layers


@needs_dot
@pytest.mark.tf
def test_dpi_and_rankdir_change_the_picture(runner, tmp_path):
    spec = SPECS / "toy_resnet_blocks.yaml"
    assert plot(runner, spec, "-o", tmp_path / "tb.png").exit_code == 0
    assert plot(runner, spec, "-o", tmp_path / "lr.png", "--rankdir", "LR").exit_code == 0
    assert plot(runner, spec, "-o", tmp_path / "hi.png", "--dpi", "192").exit_code == 0
    tb, lr, hi = (png_size(tmp_path / f"{n}.png") for n in ("tb", "lr", "hi"))
    assert tb[1] > tb[0] and lr[0] > lr[1]  # tall, then wide
    assert 1.8 < hi[0] / tb[0] < 2.2


@needs_dot
@pytest.mark.tf
@pytest.mark.parametrize("spec", ["ticket_router.yaml", "siamese.yaml", "autoencoder_nested.yaml"])
def test_svg_names_every_layer_and_shows_shapes(runner, tmp_path, spec):
    model = built(spec)
    plain, shaped = tmp_path / "plain.svg", tmp_path / "shaped.svg"
    assert plot(runner, SPECS / spec, "-o", plain).exit_code == 0
    result = plot(runner, SPECS / spec, "-o", shaped, "--show-shapes")
    assert result.exit_code == 0, result.output
    plain_text, shaped_text = plain.read_text(), shaped.read_text()
    assert plain_text.lstrip().startswith("<?xml") and "<svg" in plain_text
    for name in layer_names(model):
        assert f">{name}</text>" in plain_text, name
    for shape in output_shapes(model):
        assert f">{shape}</text>" in shaped_text, shape
        assert f">{shape}</text>" not in plain_text


@needs_dot
@pytest.mark.tf
def test_pdf(runner, tmp_path):
    out = tmp_path / "model.pdf"
    assert plot(runner, SPECS / "siamese.yaml", "-o", out).exit_code == 0
    assert out.read_bytes().startswith(b"%PDF")


# -- DOT and Mermaid: no Graphviz needed ------------------------------------------------

EDGE_SPECS = [
    "ticket_router.yaml",
    "siamese.yaml",
    "shared_embedding.yaml",
    "autoencoder_nested.yaml",
    "toy_resnet_blocks.yaml",
    "video_mlp.yaml",
    "main_aux.yaml",
    "inception.yaml",
    "ensemble.yaml",
]


@pytest.mark.tf
@pytest.mark.parametrize("spec", EDGE_SPECS)
def test_dot_parses_and_has_every_edge(runner, tmp_path, spec):
    out = tmp_path / "model.dot"
    result = plot(runner, SPECS / spec, "-o", out)
    assert result.exit_code == 0, result.output
    graph = dot_graph(out.read_text())
    model = built(spec)
    names = Counter(unquote(n.get_name()) for n in dot_nodes(graph))
    assert names == Counter(layer_names(model))  # each layer once, shared or not
    edges = Counter(
        (unquote(e.get_source()), unquote(e.get_destination())) for e in dot_edges(graph)
    )
    assert edges == keras_edges(model)


@pytest.mark.tf
@pytest.mark.parametrize("spec", EDGE_SPECS)
def test_mermaid_has_every_edge(runner, tmp_path, spec):
    out = tmp_path / "model.mmd"
    result = plot(runner, SPECS / spec, "-o", out, "--show-shapes", "--show-activations")
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.startswith("flowchart TB\n")
    model = built(spec)
    assert mermaid_edges(text) == keras_edges(model)
    names = [m[2] for m in map(MERMAID_NODE.match, text.splitlines()) if m]
    assert Counter(names) == Counter(layer_names(model))


@pytest.mark.tf
def test_mermaid_and_dot_to_stdout(runner):
    result = plot(runner, SPECS / "ticket_router.yaml", "--format", "mmd", "--rankdir", "LR")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("flowchart LR\n")
    result = plot(runner, SPECS / "ticket_router.yaml", "--format", "dot")
    assert result.exit_code == 0, result.output
    assert "rankdir=TB" in result.stdout
    assert dot_graph(result.stdout).get_name() == '"ticket_router"'


@pytest.mark.tf
def test_shared_layer_is_one_node_with_numbered_calls(runner):
    text = plot(runner, SPECS / "siamese.yaml", "--format", "dot").stdout
    graph = dot_graph(text)
    assert [unquote(n.get_name()) for n in dot_nodes(graph)].count("shared_lstm") == 1
    into = [e for e in dot_edges(graph) if unquote(e.get_destination()) == "shared_lstm"]
    out_of = [e for e in dot_edges(graph) if unquote(e.get_source()) == "shared_lstm"]
    assert sorted((unquote(e.get_source()), e.get("label")) for e in into) == [
        ("tweet_a", '" call 1 "'),
        ("tweet_b", '" call 2 "'),
    ]
    assert sorted(e.get("label") for e in out_of) == ['" call 1 "', '" call 2 "']
    assert "shared: called 2 times" in text
    mermaid = plot(runner, SPECS / "siamese.yaml", "--format", "mmd").stdout
    assert "tweet_a -->|call 1| shared_lstm" in mermaid
    assert "tweet_b -->|call 2| shared_lstm" in mermaid


@pytest.mark.tf
def test_multi_input_and_output_models_number_them(runner):
    text = plot(runner, SPECS / "ticket_router.yaml", "--format", "mmd").stdout
    for i, name in enumerate(("title", "body", "tags"), 1):
        assert f"<b>{name}</b><br>Input {i} of 3" in text
    assert "<b>priority</b><br>Dense<br>output 1 of 2" in text
    assert "<b>department</b><br>Dense<br>output 2 of 2" in text
    assert re.search(r"class title,body,tags input$", text, re.M)


@pytest.mark.tf
def test_expand_nested_draws_inner_layers_in_a_cluster(runner):
    spec = SPECS / "autoencoder_nested.yaml"
    collapsed = dot_graph(plot(runner, spec, "--format", "dot").stdout)
    assert not collapsed.get_subgraphs()
    assert {unquote(n.get_name()) for n in dot_nodes(collapsed)} == {"img", "encoder", "decoder"}

    text = plot(runner, spec, "--format", "dot", "--expand-nested").stdout
    graph = dot_graph(text)
    clusters = {unquote(s.get_name()): s for s in graph.get_subgraphs()}
    assert set(clusters) == {"cluster_encoder", "cluster_decoder"}
    model = built("autoencoder_nested.yaml")
    for nested in ("encoder", "decoder"):
        inside = {unquote(n.get_name()) for n in dot_nodes(clusters[f"cluster_{nested}"])}
        inner = model.get_layer(nested)
        assert inside == {f"{nested}/{name}" for name in layer_names(inner)}
    edges = {(unquote(e.get_source()), unquote(e.get_destination())) for e in dot_edges(graph)}
    assert ("img", "encoder/original_img") in edges
    assert ("encoder/encoder_output", "decoder/encoded_img") in edges
    assert ("encoder/conv4", "encoder/encoder_output") in edges
    assert "output: decoder" in text  # the model's output, drawn inside the decoder

    mermaid = plot(runner, spec, "--format", "mmd", "--expand-nested").stdout
    assert re.search(r'^    subgraph \w+ \["encoder: nested model \(6 layers\)"\]$', mermaid, re.M)
    assert "img --> encoder__original_img" in mermaid
    assert mermaid.count("\n    end\n") == 2


@pytest.mark.tf
def test_expand_nested_opens_a_wrapped_model(runner):
    spec = SPECS / "video_mlp.yaml"
    text = plot(runner, spec, "--format", "dot", "--expand-nested", "--show-shapes").stdout
    graph = dot_graph(text)
    (cluster,) = graph.get_subgraphs()
    assert "TimeDistributed of model mnist_mlp (3 layers)" in cluster.get("label")
    assert "(None, 20, 10)" in cluster.get("label")
    inside = {unquote(n.get_name()) for n in dot_nodes(cluster)}
    assert "processed_sequences/dense1" in inside
    collapsed = plot(runner, spec, "--format", "tree").stdout
    assert "TimeDistributed of model mnist_mlp (3 layers)" in collapsed


@pytest.mark.tf
def test_tree_prints_every_layer(runner):
    result = plot(runner, SPECS / "ticket_router.yaml", "--format", "tree", "--show-shapes")
    assert result.exit_code == 0, result.output
    model = built("ticket_router.yaml")
    lines = result.stdout.splitlines()
    assert lines[0] == "ticket_router"
    for name in layer_names(model):
        assert any(re.search(rf"\b{name}\b", line) for line in lines[1:]), name
    features = next(line for line in lines if " features " in line)
    assert "(None, 172)" in features
    assert "\u2190 title_features, body_features, tags" in features


@pytest.mark.tf
def test_tree_json_is_the_graph_description(runner):
    result = plot(runner, SPECS / "siamese.yaml", "--format", "tree", "--json")
    assert result.exit_code == 0, result.output
    graph = json.loads(result.stdout)
    assert [n["name"] for n in graph["nodes"]].count("shared_lstm") == 1
    labels = [e["label"] for e in graph["edges"] if e["target"] == "shared_lstm"]
    assert labels == ["call 1", "call 2"]


@pytest.mark.tf
def test_multi_output_sources_and_shared_models_are_labelled(runner, write_spec):
    path = write_spec(
        """\
kgraph: 1
default: top
models:
  twohead:
    inputs: {x: [8]}
    layers:
      a: {type: Dense, units: 4, from: x}
      b: {type: Dense, units: 3, from: x}
    outputs: [a, b]
  top:
    inputs: {seq: [5, 8], v: [8], w: [8]}
    layers:
      lstm: {type: LSTM, units: 6, return_state: true, from: seq}
      heads: {model: twohead, from: v}
      heads_again: {share: heads, from: w}
      cat: {type: Concatenate, from: [lstm.0, lstm.2, heads.1, heads_again.0]}
      end: {type: Dense, units: 1, from: cat}
    outputs: {score: end, state: lstm.1}
"""
    )
    graph = json.loads(plot(runner, path, "--format", "tree", "--json").stdout)
    labels = {(e["source"], e["target"], e["label"]) for e in graph["edges"]}
    assert ("lstm", "state", "lstm.1") in labels
    assert ("heads", "cat", "heads.b, call 1") in labels
    assert ("heads", "cat", "heads.a, call 2") in labels
    heads = next(n for n in graph["nodes"] if n["name"] == "heads")
    assert heads["class_name"] == "nested model twohead (2 layers)" and heads["calls"] == 2

    expanded = json.loads(
        plot(runner, path, "--format", "tree", "--json", "--expand-nested").stdout
    )
    labels = {(e["source"], e["target"], e["label"]) for e in expanded["edges"]}
    assert ("v", "heads/x", "call 1") in labels and ("w", "heads/x", "call 2") in labels
    assert ("heads/b", "cat", "call 1") in labels and ("heads/a", "cat", "call 2") in labels
    mermaid = plot(runner, path, "--format", "mmd").stdout
    assert 'n_end["<b>end</b>' in mermaid  # `end` is a Mermaid keyword


@pytest.mark.tf
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # Keras's save
def test_keras_file(runner, tmp_path):
    saved = tmp_path / "model.keras"
    built("siamese.yaml").save(saved)
    result = plot(runner, saved, "--format", "mmd")
    assert result.exit_code == 0, result.output
    assert mermaid_edges(result.stdout) == keras_edges(built("siamese.yaml"))


@pytest.mark.tf
def test_hide_layer_names(runner):
    text = plot(runner, SPECS / "mnist.yaml", "--format", "mmd", "--hide-layer-names").stdout
    assert "<b>hidden1</b>" not in text
    assert 'hidden1["<b>Dense</b>"]' in text


# -- training curves -------------------------------------------------------------


def write_run(tmp_path: Path, history: object = HISTORY) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "history.json").write_text(json.dumps(history))
    return run


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_run_dir_draws_training_curves(runner, tmp_path, suffix):
    out = tmp_path / f"curves{suffix}"
    result = plot(runner, write_run(tmp_path), "-o", out)
    assert result.exit_code == 0, result.output
    assert "training curves" in result.stdout
    if suffix == ".png":
        width, height = png_size(out)
        assert width >= 600 and height >= 250
    else:
        text = out.read_text()
        assert "<svg" in text and "epoch" in text
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_run_dir_curves_only_as_images(runner, tmp_path):
    result = plot(runner, write_run(tmp_path), "-o", tmp_path / "x.mmd")
    assert result.exit_code == 2
    assert "model.keras" in result.stderr


@pytest.mark.parametrize("history", [[1, 2], {"loss": []}, {"loss": "high"}])
def test_run_dir_with_a_bad_history(runner, tmp_path, history):
    result = plot(runner, write_run(tmp_path, history), "-o", tmp_path / "c.png")
    assert result.exit_code == 1
    assert "history.json" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "c.png").exists()


# -- errors ---------------------------------------------------------------------------


def test_unknown_extension_is_a_usage_error(runner, tmp_path):
    result = plot(runner, SPECS / "mnist.yaml", "-o", tmp_path / "model.jpg")
    assert result.exit_code == 2
    assert "'.jpg'" in result.stderr
    assert ".png, .svg, .pdf, .dot" in result.stderr and ".mmd" in result.stderr


def test_unknown_format_and_no_output(runner):
    result = plot(runner, SPECS / "mnist.yaml", "--format", "gif")
    assert result.exit_code == 2 and "unknown --format 'gif'" in result.stderr
    result = plot(runner, SPECS / "mnist.yaml")
    assert result.exit_code == 2 and "-o FILE" in result.stderr


@pytest.mark.tf
def test_existing_output_needs_force(runner, tmp_path):
    out = tmp_path / "model.mmd"
    out.write_text("keep me")
    result = plot(runner, SPECS / "mnist.yaml", "-o", out)
    assert result.exit_code == 2
    assert "already exists" in result.stderr and "--force" in result.stderr
    assert out.read_text() == "keep me"
    result = plot(runner, SPECS / "mnist.yaml", "-o", out, "--force")
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("flowchart")


def test_missing_graphviz_says_how_to_install_it(runner, tmp_path, monkeypatch):
    import kgraph_cli.plot.command

    monkeypatch.setattr(kgraph_cli.plot.command.shutil, "which", lambda name, *a, **k: None)
    out = tmp_path / "model.png"
    result = plot(runner, SPECS / "mnist.yaml", "-o", out)
    assert result.exit_code == 1
    assert "Graphviz's `dot` is not installed: apt-get install graphviz (Debian/Ubuntu)" in (
        result.stderr
    )
    assert "brew install graphviz (macOS)" in result.stderr
    assert "-o model.mmd" in result.stderr  # what to do instead
    assert "Traceback" not in result.output
    assert not out.exists()


def test_missing_graphviz_as_json(runner, tmp_path, monkeypatch):
    import kgraph_cli.plot.command

    monkeypatch.setattr(kgraph_cli.plot.command.shutil, "which", lambda name, *a, **k: None)
    result = plot(runner, SPECS / "mnist.yaml", "-o", tmp_path / "m.svg", "--json")
    assert result.exit_code == 1
    (error,) = json.loads(result.stdout)
    assert error["message"].startswith("Graphviz's `dot` is not installed")
