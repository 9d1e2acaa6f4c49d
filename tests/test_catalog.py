"""The layer catalog (used without TensorFlow) matches the installed Keras."""

from __future__ import annotations

import pytest

from kgraph_cli.layers import catalog_keras_version, keras_catalog


@pytest.mark.tf
def test_catalog_matches_installed_keras():
    from kgraph_cli.catalog_gen import build_catalog
    from kgraph_cli.tf import import_keras

    import_keras()
    live = build_catalog()
    assert catalog_keras_version() == live["keras_version"], "run `make catalog`"
    stored = keras_catalog()
    assert sorted(stored) == sorted(live["layers"]), "run `make catalog`"
    for name, entry in live["layers"].items():
        assert sorted(stored[name].params) == entry["params"], f"{name}: run `make catalog`"


def test_catalog_knows_common_layers_and_their_arguments():
    catalog = keras_catalog()
    assert {"units", "activation", "use_bias"} <= catalog["Dense"].params
    assert catalog["Dense"].required == {"units"}
    # Base-class arguments a subclass fills in itself are not the user's.
    assert catalog["LSTM"].required == {"units"}
    assert catalog["Conv2D"].required == {"filters", "kernel_size"}
    assert catalog["TimeDistributed"].wraps_layer
    assert "InputLayer" not in catalog
