"""What `train:` accepts: the keys of each of its parts with what they mean, the
data-source kinds and their options, the dataset names, the transforms, and
the valid values of the source options that are known without reading data.

Plain data without imports, so that spec/ and the data readers
(kgraph_cli.data.sources) both read these tables: each list exists once.
"""

from __future__ import annotations

TRAIN_KEYS = {
    "data": "where the training data comes from and how it feeds the model",
    "compile": "optimizer, loss(es), loss weights and metrics",
    "fit": "batch size, epochs, validation, shuffling, class weights, seed",
    "callbacks": "Keras callbacks by name, with their arguments",
    "fine_tune": "a second phase after fit: unfreeze (part of) a frozen node and train on "
    "with a lower learning rate",
    "distribute": "where training runs: a tf.distribute strategy name (default, mirrored, "
    "multi_worker, tpu) or {strategy: ..., cpu_devices: ..., timeout: ...}",
    "precision": "float32 (default), mixed_float16 or mixed_bfloat16: Keras's dtype policy "
    "for the model's layers (its outputs stay float32)",
}
# strategy -> what it runs on (kgraph_cli.distribute makes each one)
STRATEGIES = {
    "default": "this process and TensorFlow's default device placement",
    "mirrored": "synchronous data parallelism over this machine's GPUs (or cpu_devices "
    "logical CPU devices)",
    "multi_worker": "synchronous data parallelism across processes and machines "
    "(MultiWorkerMirroredStrategy; the cluster comes from TF_CONFIG)",
    "tpu": "a Cloud TPU (TPUStrategy; train.distribute.tpu names it, default: this TPU VM's)",
}
DISTRIBUTE_KEYS = {
    "strategy": "default, mirrored, multi_worker or tpu (default: default)",
    "cpu_devices": "mirrored: split the CPU into N logical devices and mirror over them "
    "(for machines without GPUs, and for tests)",
    "timeout": "multi_worker: seconds to wait for every worker to come up, and for a peer "
    "in each collective step (default 300)",
    "tpu": "tpu: the TPU's name or grpc:// address (default: the TPU VM's own)",
}
DEFAULT_DISTRIBUTE_TIMEOUT = 300.0
# precision -> what it means (Keras dtype policy names)
PRECISIONS = {
    "float32": "everything in float32 (default)",
    "mixed_float16": "float16 computations, float32 variables, with loss scaling (GPUs)",
    "mixed_bfloat16": "bfloat16 computations, float32 variables (TPUs, recent CPUs and GPUs)",
}
FINE_TUNE_KEYS = {
    "unfreeze": "the node to unfreeze (an application or model node, or a layer)",
    "layers": "unfreeze only its last N layers (default: all of them)",
    "from_layer": "unfreeze its layers from this one (by name) on",
    "learning_rate": "the optimizer's learning rate in this phase (default 1e-5)",
    "epochs": "epochs of this phase, after fit's (default 1)",
}
COMPILE_KEYS = {
    "optimizer": "an optimizer name, or {type: Adam, learning_rate: ...}",
    "loss": "one loss, a list (one per output) or a mapping by output name",
    "loss_weights": "a list (one per output) or a mapping by output name",
    "metrics": "a list of metrics, or a mapping of output name to a list",
    "jit_compile": "compile the training step with XLA (true/false; default: Keras's choice)",
}
FIT_KEYS = {
    "batch_size": "samples per gradient step (default 32)",
    "epochs": "passes over the training data (default 1)",
    "validation": "a fraction of the training data (0.2), a split of the source (test), "
    "or {source: ...}",
    "shuffle": "shuffle the training data each epoch (default true)",
    "class_weight": "mapping of class index to weight",
    "steps_per_execution": "batches run per call into TensorFlow (default: automatic)",
    "seed": "seed for weights, shuffling and dropout: the same seed gives the same history",
}
DATA_KEYS = {
    "source": "the data: {dataset: mnist}, {npz: file.npz}, {csv: file.csv}, ...",
    "inputs": "model input name -> source field (or {field: x, transforms: [...]})",
    "targets": "model output name -> source field (or {field: y, transforms: [...]})",
    "take": "use only the first N training samples",
    "test": "held-out data for `evaluate`: a fraction, a split of the source, or {source: ...}",
    "cache": "keep the prepared data in memory between epochs (default true)",
    "shuffle": "shuffle the samples once (seeded by fit.seed) before taking test and "
    "validation fractions, for sources sorted by class or writer (default false)",
}
FEED_KEYS = {
    "field": "the source field (array, npz key, CSV column...)",
    "columns": "several CSV columns stacked into one input",
    "transforms": "a list of transforms applied in order",
}
# kind -> the source's options (its own key first) with what they mean.
SOURCE_KINDS: dict[str, dict[str, str]] = {
    "dataset": {
        "dataset": "a keras.datasets name",
        "num_words": "imdb/reuters: keep the N most frequent words",
        "maxlen": "imdb/reuters: pad or cut sequences to this length",
        "skip_top": "imdb/reuters: skip the N most frequent words",
        "label_mode": "cifar100: fine or coarse",
        "split": "which split feeds training (default train)",
    },
    "npz": {
        "npz": "path of a .npz file (keys are fields; x_train/x_test are splits)",
        "split": "which split feeds training (default train)",
    },
    "npy": {"npy": "mapping of field name to a .npy file"},
    "csv": {
        "csv": "path of a CSV or TSV file with a header row",
        "delimiter": "column separator (default: ',' or tab for .tsv)",
    },
    "images": {
        "images": "a directory with one sub-directory of images per class",
        "image_size": "[height, width] images are resized to (default [256, 256])",
        "color_mode": "rgb, grayscale or rgba (default rgb)",
    },
    "tfrecord": {
        "tfrecord": "a TFRecord file (or list of files) of tf.train.Example records",
        "features": "field name -> {shape: [...], dtype: ...} of each feature",
        "compression": "GZIP or ZLIB when the files are compressed",
    },
    "generated": {
        "generated": "number of random samples matching the model's inputs and outputs",
        "seed": "random seed (default 0)",
        "sequence_length": "length used for variable-length (null) dimensions (default 16)",
        "test_samples": "number of generated test samples (default: a quarter)",
        "positions": "inputs that get positions 0..N-1 along their last axis, not random ids",
    },
}
# The source kinds whose option is a path (or paths) relative to the spec's folder.
PATH_SOURCES = ("npz", "npy", "csv", "images", "tfrecord")
# The keras.datasets collections kgraph reads (from their files, or downloaded),
# and `digits`, which ships with kgraph (1,797 8x8 images). The one list of
# dataset names: kgraph_cli.data.sources.keras_datasets keys its files by it.
DATASETS = (
    "mnist",
    "fashion_mnist",
    "cifar10",
    "cifar100",
    "imdb",
    "reuters",
    "boston_housing",
    "digits",
)
SEQUENCE_DATASETS = ("imdb", "reuters")
# dataset option -> the datasets it applies to
DATASET_OPTIONS = {
    "num_words": SEQUENCE_DATASETS,
    "skip_top": SEQUENCE_DATASETS,
    "maxlen": SEQUENCE_DATASETS,
    "label_mode": ("cifar100",),
}
LABEL_MODES = {"fine": "the 100 classes", "coarse": "the 20 superclasses"}
# color_mode -> (Pillow's mode, channels)
COLOR_MODES = {"rgb": ("RGB", 3), "grayscale": ("L", 1), "rgba": ("RGBA", 4)}
DEFAULT_IMAGE_SIZE = (256, 256)
# compression, lower-cased -> TensorFlow's compression_type ('' = uncompressed)
COMPRESSIONS = {"gzip": "GZIP", "zlib": "ZLIB", "none": "", "": ""}
# TFRecord feature dtype -> the tf.train.Feature list that holds it
TFRECORD_DTYPES = {"float32": "float_list", "int64": "int64_list", "string": "bytes_list"}
TRANSFORMS = {
    "reshape": "new shape without the batch dimension, e.g. [784]",
    "cast": "a dtype, e.g. float32",
    "scale": "multiply by a number, e.g. 0.00392156862745098",
    "divide": "divide by a number, e.g. 255",
    "offset": "add a number",
    "one_hot": "number of classes: integer labels -> one-hot vectors",
    "standardize": "true: subtract the training mean, divide by the training std",
}
