"""kgraph: Keras models as YAML graphs."""

__version__ = "0.1.0"
