"""Where a run trains: the tf.distribute strategy that `train.distribute` (or
--strategy) names, made before TensorFlow runs its first op, with the
cluster of a multi-worker run read from TF_CONFIG and checked, the peers
waited for, and who writes the run directory (the chief).

    runtime = Runtime.plan(spec.distribute)   # TF_CONFIG checked, no TensorFlow
    runtime.start()                           # the strategy, before any op
    with runtime.scope():                     # the model, its optimizer, metrics
        ...
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from kgraph_cli.errors import KgraphError, UsageError
from kgraph_cli.spec.train.model import DistributeSpec
from kgraph_cli.tf import import_keras

TF_CONFIG = "TF_CONFIG"
# The job names of TF_CONFIG's cluster that train (an evaluator only evaluates,
# a ps serves ParameterServerStrategy, which kgraph does not offer).
_TRAINING_JOBS = ("chief", "worker")
_TF_CONFIG_EXAMPLE = (
    'e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
    '"task": {"type": "worker", "index": 0}}\''
)


class DistributeError(KgraphError):
    """The strategy cannot run here: a bad TF_CONFIG, missing devices, absent peers."""

    code = "distribute"


@dataclass(frozen=True)
class ClusterTask:
    """This process's place in a multi-worker cluster (from TF_CONFIG)."""

    cluster: dict[str, list[str]]
    kind: str  # "chief" or "worker"
    index: int

    @property
    def address(self) -> str:
        return self.cluster[self.kind][self.index]

    @property
    def is_chief(self) -> bool:
        """The chief writes the run: the `chief` task, or worker 0 without one."""
        return self.kind == "chief" or ("chief" not in self.cluster and self.index == 0)

    @property
    def size(self) -> int:
        return sum(len(self.cluster.get(job, [])) for job in _TRAINING_JOBS)

    def peers(self) -> list[tuple[str, str]]:
        """(task name, host:port) of every other training task."""
        return [
            (f"{job} {i}", address)
            for job in _TRAINING_JOBS
            for i, address in enumerate(self.cluster.get(job, []))
            if (job, i) != (self.kind, self.index)
        ]

    def describe(self) -> str:
        role = "the chief" if self.is_chief else "not the chief"
        return f"{self.kind} {self.index} of {self.size} tasks at {self.address} ({role})"


def read_cluster(environ: Mapping[str, str] | None = None) -> ClusterTask:
    """The cluster and this task from TF_CONFIG, checked; DistributeError if it
    is missing, not JSON, or does not place this task in its cluster."""
    environ = os.environ if environ is None else environ
    text = environ.get(TF_CONFIG, "")
    if not text.strip():
        raise DistributeError(
            f"the multi_worker strategy needs the cluster in the {TF_CONFIG} environment "
            "variable, which is not set",
            f"set it on every worker ({_TF_CONFIG_EXAMPLE}; Kubernetes training operators, "
            "Vertex AI and SageMaker set it), or train with --strategy default",
        )
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise DistributeError(
            f"{TF_CONFIG} is not JSON: {exc}",
            f"{TF_CONFIG} is one JSON object, {_TF_CONFIG_EXAMPLE}",
        ) from None
    if not isinstance(config, dict):
        raise _bad(f"{TF_CONFIG} must be a JSON object, got {type(config).__name__}")
    cluster = config.get("cluster")
    if not isinstance(cluster, dict) or not any(job in cluster for job in _TRAINING_JOBS):
        raise _bad(f"{TF_CONFIG}.cluster must be an object with a `worker` (or `chief`) list")
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not addresses:
            raise _bad(f"{TF_CONFIG}.cluster.{job} must be a non-empty list of host:port")
        for i, address in enumerate(addresses):
            if not _is_address(address):
                raise _bad(f"{TF_CONFIG}.cluster.{job}[{i}] must be host:port, got {address!r}")
    for job in cluster:
        if job not in (*_TRAINING_JOBS, "evaluator", "ps"):
            raise _bad(f"{TF_CONFIG}.cluster has an unknown job {job!r}")
    if "ps" in cluster:
        raise _bad(
            f"{TF_CONFIG}.cluster has parameter servers (`ps`): that is "
            "ParameterServerStrategy's cluster, and kgraph trains with multi_worker "
            "(all-reduce across `chief`/`worker` tasks)"
        )
    task = config.get("task")
    if not isinstance(task, dict):
        raise _bad(f"{TF_CONFIG}.task must be an object {{type: worker, index: N}}")
    kind, index = task.get("type"), task.get("index", 0)
    if kind not in _TRAINING_JOBS:
        raise _bad(
            f"{TF_CONFIG}.task.type must be chief or worker, got {kind!r}"
            + (" (an evaluator does not train)" if kind == "evaluator" else "")
        )
    if kind not in cluster:
        raise _bad(f"{TF_CONFIG}.task.type is {kind!r} but the cluster has no {kind!r} list")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(cluster[kind]):
        raise _bad(
            f"{TF_CONFIG}.task.index is {index!r}, but cluster.{kind} has "
            f"{len(cluster[kind])} task(s) (index 0 to {len(cluster[kind]) - 1})"
        )
    if len(cluster.get("chief", [])) > 1:
        raise _bad(f"{TF_CONFIG}.cluster.chief lists {len(cluster['chief'])} tasks; it has one")
    training = {job: list(cluster[job]) for job in _TRAINING_JOBS if job in cluster}
    return ClusterTask(training, kind, index)


def _bad(message: str) -> DistributeError:
    return DistributeError(message, f"fix {TF_CONFIG} on this worker: {_TF_CONFIG_EXAMPLE}")


def _is_address(value: Any) -> bool:
    if not isinstance(value, str) or ":" not in value:
        return False
    host, _, port = value.rpartition(":")
    return bool(host) and port.isdigit() and 0 < int(port) < 65536


def wait_for_peers(task: ClusterTask, timeout: float) -> None:
    """Meet every peer before TensorFlow starts (TensorFlow waits for an absent
    peer forever, holding the interpreter): listen on this task's port, and
    return once this task has reached every peer's port and heard from every
    peer on its own. A peer that has gone on to TensorFlow had heard from this
    task before, so reaching its TensorFlow server is reaching it."""
    port = int(task.address.rpartition(":")[2])
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("", port))
        listener.listen(64)
    except OSError as exc:
        listener.close()
        raise DistributeError(
            f"{task.describe()}: cannot listen on port {port}: {exc.strerror or exc}",
            f"another process holds port {port}; free it or give this task another port "
            f"in {TF_CONFIG}",
        ) from None
    listener.settimeout(0.2)
    me = f"{task.kind} {task.index}\n".encode()
    unreached = dict(task.peers())
    unheard = set(unreached)
    deadline = time.monotonic() + timeout
    try:
        while unreached or unheard:
            for name, address in list(unreached.items()):
                host, _, peer_port = address.rpartition(":")
                with contextlib.suppress(OSError):
                    with socket.create_connection((host, int(peer_port)), timeout=1.0) as peer:
                        peer.sendall(me)
                    del unreached[name]
            with contextlib.suppress(OSError):
                connection, _ = listener.accept()
                with connection:
                    connection.settimeout(1.0)
                    unheard.discard(connection.recv(64).decode(errors="replace").strip())
            if (unreached or unheard) and time.monotonic() > deadline:
                absent = {**unreached, **{name: dict(task.peers())[name] for name in unheard}}
                listing = ", ".join(f"{name} ({address})" for name, address in absent.items())
                raise DistributeError(
                    f"{task.describe()}: {listing} did not come up within {timeout:g} s",
                    "start every worker of the cluster (the same spec and command, each with "
                    "its own TF_CONFIG task), or raise train.distribute.timeout",
                )
    finally:
        listener.close()


@dataclass
class Runtime:
    """The strategy a run uses, and this process's part in it: planned from the
    spec without TensorFlow (the cluster of multi_worker is read and checked),
    then started (the strategy made; None for TensorFlow's default)."""

    spec: DistributeSpec
    task: ClusterTask | None = None
    strategy: Any = None

    @classmethod
    def plan(cls, spec: DistributeSpec) -> Runtime:
        return cls(spec, read_cluster() if spec.strategy == "multi_worker" else None)

    @property
    def name(self) -> str:
        return self.spec.strategy

    @property
    def distributed(self) -> bool:
        return self.spec.strategy != "default"

    @property
    def is_chief(self) -> bool:
        return self.task is None or self.task.is_chief

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync if self.strategy is not None else 1

    def start(self) -> None:
        """Make the strategy. Call before TensorFlow runs any op: the logical
        devices of mirrored and the cluster of multi_worker are fixed when its
        runtime starts."""
        spec = self.spec
        if spec.strategy == "multi_worker":
            assert self.task is not None
            wait_for_peers(self.task, spec.timeout)
            self.strategy = _multi_worker_strategy(spec.timeout)
        elif spec.strategy == "mirrored":
            self.strategy = _mirrored_strategy(spec.cpu_devices)
        elif spec.strategy == "tpu":
            self.strategy = _tpu_strategy(spec.tpu)

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """Where the model, its optimizer and its metrics are made."""
        if self.strategy is None:
            yield
            return
        with self.strategy.scope():
            yield

    def shard(self, dataset: Any) -> Any:
        """In-memory data is split between the workers batch by batch (DATA):
        there are no files to split (FILE), and each worker takes its part of
        every global batch."""
        if self.task is None:
            return dataset
        import tensorflow as tf

        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        return dataset.with_options(options)

    def describe(self) -> str:
        if self.strategy is None:
            return ""
        devices = ", ".join(self.strategy.extended.worker_devices)
        where = f"{self.task.describe()}; " if self.task else ""
        return f"strategy {self.name}: {where}{self.replicas} replica(s) in sync ({devices})"


def _mirrored_strategy(cpu_devices: int | None) -> Any:
    import_keras()
    import tensorflow as tf

    if cpu_devices is None:
        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            raise DistributeError(
                "the mirrored strategy found no GPU on this machine",
                "set train.distribute.cpu_devices: N to mirror over N logical CPU devices "
                "(tests, CPU-only machines), or train with --strategy default",
            )
        return tf.distribute.MirroredStrategy()
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(cpu_devices)]
        )
    except RuntimeError:  # TensorFlow has started: its devices are what they are
        if len(tf.config.list_logical_devices("CPU")) != cpu_devices:
            raise DistributeError(
                f"cannot split the CPU into {cpu_devices} logical devices: TensorFlow has "
                "started already in this process",
                "run the training in a new process (the kgraph command does)",
            ) from None
    devices = [f"/cpu:{i}" for i in range(cpu_devices)]
    return tf.distribute.MirroredStrategy(
        devices, cross_device_ops=tf.distribute.ReductionToOneDevice()
    )


def _multi_worker_strategy(timeout: float) -> Any:
    import_keras()
    import tensorflow as tf

    class MultiWorkerStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        """MultiWorkerMirroredStrategy whose reduce() takes structures of
        scalars, as Keras 3's fit() hands it: Keras reduces per-replica
        results over axis 0, which a scalar has not, and a (x, y) tuple whole
        (keras-team/keras#20585); here each leaf is reduced, a scalar over no
        axis."""

        def reduce(self, reduce_op: Any, value: Any, axis: Any) -> Any:
            def leaf(item: Any) -> Any:
                local = self.experimental_local_results(item)[0]
                scalar = axis is not None and len(getattr(local, "shape", ())) == 0
                return super(MultiWorkerStrategy, self).reduce(
                    reduce_op, item, None if scalar else axis
                )

            return tf.nest.map_structure(leaf, value)

    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout)
    return MultiWorkerStrategy(communication_options=options)


def _tpu_strategy(tpu: str | None) -> Any:
    import_keras()
    import tensorflow as tf

    if tpu is None and not tf.config.list_physical_devices("TPU"):
        raise DistributeError(
            "the tpu strategy found no TPU on this machine",
            "run on a Cloud TPU VM, or name a TPU with train.distribute.tpu (its name or "
            "grpc:// address)",
        )
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "local")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except Exception as exc:  # TensorFlow raises many kinds here  # noqa: BLE001
        raise DistributeError(
            f"cannot reach the TPU {tpu or 'of this VM'}: {exc}",
            "check train.distribute.tpu and that the TPU is up",
        ) from None
    return tf.distribute.TPUStrategy(resolver)


def inference_runtime(strategy: str | None, settings: DistributeSpec | None) -> Runtime:
    """The started runtime of `evaluate` and `predict` with --strategy (default:
    TensorFlow's default placement), its settings (cpu_devices, tpu) from the
    spec's train.distribute. They are one pass in one process, so
    multi_worker is refused."""
    if strategy is None or strategy == "default":
        return Runtime(DistributeSpec())
    if strategy == "multi_worker":
        raise UsageError(
            "evaluate and predict run in one process: the multi_worker strategy is for train",
            "use --strategy mirrored for this machine's GPUs",
        )
    runtime = Runtime(replace(settings or DistributeSpec(), strategy=strategy))
    runtime.start()
    return runtime
