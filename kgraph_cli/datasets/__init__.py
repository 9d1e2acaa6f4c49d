"""Small datasets shipped with kgraph for offline use."""
