"""The `train:` section of a spec, checked without TensorFlow and without data.

- keys.py: which keys each part of `train:` accepts, the source kinds and their
  options, the dataset names, the transforms, the valid option values;
- model.py: the typed objects (TrainSpec, DataSpec, FeedSpec, SplitSpec...);
- sources.py: data sources, their kind and option values (also run by the
  data readers);
- data.py: `data:`, its source, test split, feeds and transforms;
- parse.py: `parse_train`, `checked_train`: the whole section.

The checks of single values are `spec/fields.py`'s, shared with the graph
parser. The names other modules use are importable from here.
"""

from __future__ import annotations

from kgraph_cli.spec.train.keys import (
    COMPILE_KEYS,
    DATA_KEYS,
    DATASETS,
    FEED_KEYS,
    FIT_KEYS,
    SOURCE_KINDS,
    TRAIN_KEYS,
    TRANSFORMS,
)
from kgraph_cli.spec.train.model import (
    CompileSpec,
    DataSpec,
    FeedSpec,
    FitSpec,
    ObjectSpec,
    SourceSpec,
    SplitSpec,
    TrainSpec,
    TransformSpec,
)
from kgraph_cli.spec.train.parse import (
    checked_train,
    missing_data,
    output_names,
    parse_train,
    spec_precision,
)
from kgraph_cli.spec.train.sources import check_source

__all__ = [
    "COMPILE_KEYS",
    "DATASETS",
    "DATA_KEYS",
    "FEED_KEYS",
    "FIT_KEYS",
    "SOURCE_KINDS",
    "TRAIN_KEYS",
    "TRANSFORMS",
    "CompileSpec",
    "DataSpec",
    "FeedSpec",
    "FitSpec",
    "ObjectSpec",
    "SourceSpec",
    "SplitSpec",
    "TrainSpec",
    "TransformSpec",
    "check_source",
    "checked_train",
    "missing_data",
    "output_names",
    "parse_train",
    "spec_precision",
]
