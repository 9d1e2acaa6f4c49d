"""Everything about spec files that needs no TensorFlow."""
