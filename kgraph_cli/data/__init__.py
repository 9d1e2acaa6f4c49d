"""Training data: reading sources (datasets, npz, npy, CSV, images, TFRecord) into numpy
arrays, and preparing them for a model."""
