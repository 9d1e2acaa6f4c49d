"""tf.distribute: `train.distribute` and --strategy. TF_CONFIG is checked
without TensorFlow; the strategies really run, in `kgraph` subprocesses (the
logical devices of `mirrored` and the cluster of `multi_worker` are fixed when
TensorFlow starts): mirrored over 2 logical CPU devices, multi_worker as two
local processes on free localhost ports, a worker killed mid-run and the
cluster restarted with the same command, a peer that never comes up."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from kgraph_cli.distribute import ClusterTask, DistributeError, read_cluster, wait_for_peers
from tests.conftest import REPO, SPECS, invoke

DIGITS = SPECS / "digits.yaml"
KGRAPH = [sys.executable, "-c", "from kgraph_cli.cli import main; main()"]


def tf_config(ports: list[int], index: int, kind: str = "worker") -> str:
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    return json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}})


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


# -- TF_CONFIG, without TensorFlow ------------------------------------------


def test_tf_config_places_the_task_in_its_cluster() -> None:
    config = json.dumps(
        {
            "cluster": {"chief": ["a:1"], "worker": ["b:2", "c:3"], "evaluator": ["d:4"]},
            "task": {"type": "worker", "index": 1},
        }
    )
    task = read_cluster({"TF_CONFIG": config})
    assert task == ClusterTask({"chief": ["a:1"], "worker": ["b:2", "c:3"]}, "worker", 1)
    assert task.address == "c:3" and task.size == 3 and not task.is_chief
    assert task.peers() == [("chief 0", "a:1"), ("worker 0", "b:2")]
    assert read_cluster({"TF_CONFIG": tf_config([1, 2], 0)}).is_chief  # worker 0, no chief
    chief = read_cluster({"TF_CONFIG": config.replace('"worker", "index": 1', '"chief"')})
    assert chief.is_chief and chief.index == 0  # index defaults to 0


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("", "needs the cluster in the TF_CONFIG environment variable, which is not set"),
        ("{cluster", "TF_CONFIG is not JSON: Expecting property name"),
        ("[1]", "TF_CONFIG must be a JSON object, got list"),
        ('{"task": {}}', "TF_CONFIG.cluster must be an object with a `worker`"),
        ('{"cluster": {"worker": []}}', "TF_CONFIG.cluster.worker must be a non-empty list"),
        ('{"cluster": {"worker": ["host"]}}', "cluster.worker[0] must be host:port, got 'host'"),
        ('{"cluster": {"worker": ["h:99999"]}}', "must be host:port, got 'h:99999'"),
        ('{"cluster": {"worker": ["h:1"], "ps": ["p:2"]}}', "has parameter servers (`ps`)"),
        ('{"cluster": {"worker": ["h:1"], "boss": ["p:2"]}}', "unknown job 'boss'"),
        ('{"cluster": {"worker": ["h:1"]}}', "TF_CONFIG.task must be an object"),
        (
            '{"cluster": {"worker": ["h:1"]}, "task": {"type": "evaluator"}}',
            "task.type must be chief or worker, got 'evaluator' (an evaluator does not train)",
        ),
        (
            '{"cluster": {"worker": ["h:1"]}, "task": {"type": "chief"}}',
            "task.type is 'chief' but the cluster has no 'chief' list",
        ),
        (
            '{"cluster": {"worker": ["h:1", "h:2"]}, "task": {"type": "worker", "index": 2}}',
            "task.index is 2, but cluster.worker has 2 task(s) (index 0 to 1)",
        ),
        (
            '{"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": "0"}}',
            "task.index is '0'",
        ),
        (
            '{"cluster": {"chief": ["a:1", "b:2"]}, "task": {"type": "chief"}}',
            "cluster.chief lists 2 tasks; it has one",
        ),
    ],
)
def test_a_bad_tf_config_is_a_located_error(config: str, message: str) -> None:
    with pytest.raises(DistributeError) as caught:
        read_cluster({"TF_CONFIG": config})
    assert message in str(caught.value)
    assert "TF_CONFIG" in caught.value.hint


def test_a_peer_that_never_comes_up_is_named_after_the_timeout() -> None:
    mine, absent = free_ports(2)
    task = read_cluster({"TF_CONFIG": tf_config([mine, absent], 0)})
    started = time.monotonic()
    with pytest.raises(DistributeError) as caught:
        wait_for_peers(task, timeout=1.0)
    assert 1.0 <= time.monotonic() - started < 10
    assert f"worker 1 (localhost:{absent}) did not come up within 1 s" in str(caught.value)
    assert "raise train.distribute.timeout" in caught.value.hint


def test_peers_that_wait_for_each_other_meet() -> None:
    import threading

    ports = free_ports(2)
    tasks = [read_cluster({"TF_CONFIG": tf_config(ports, i)}) for i in range(2)]
    errors: list[Exception] = []

    def wait(task: ClusterTask) -> None:
        try:
            wait_for_peers(task, timeout=20)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=wait, args=(task,)) for task in tasks]
    for thread in threads:
        thread.start()
        time.sleep(0.5)  # one comes up before the other
    for thread in threads:
        thread.join(timeout=30)
    assert not errors


def test_a_port_held_by_another_process_is_named() -> None:
    holder = socket.socket()
    holder.bind(("", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        task = read_cluster({"TF_CONFIG": tf_config([port, free_ports(1)[0]], 0)})
        with pytest.raises(DistributeError, match=f"cannot listen on port {port}"):
            wait_for_peers(task, timeout=1)
    finally:
        holder.close()


def test_the_spec_checks_distribute_and_precision(write_spec: Any) -> None:
    spec = write_spec(
        "kgraph: 1\ninputs: {x: {shape: [4]}}\n"
        "layers: {d: {type: Dense, units: 2, from: x}}\noutputs: [d]\n"
        "train:\n"
        "  distribute: {strategy: mirored, cpu_devices: 0, timeout: -1, tpux: 1}\n"
        "  precision: mixed_float61\n"
    )
    result = invoke(["validate", spec, "--json"], exit_code=1)
    found = {d["path"]: d["message"] for d in json.loads(result.stdout)}
    assert found == {
        "train.distribute.strategy": "strategy must be default, mirrored, multi_worker or "
        "tpu, got string 'mirored'",
        "train.distribute.cpu_devices": "cpu_devices must be an integer >= 1, got int 0",
        "train.distribute.timeout": "timeout must be a number > 0, got int -1",
        "train.distribute.tpux": "unknown key 'tpux' in train.distribute",
        "train.precision": "precision must be float32, mixed_float16 or mixed_bfloat16, "
        "got string 'mixed_float61'",
    }
    result = invoke(["validate", spec, "--json", "--set", "train.distribute=5"], exit_code=1)
    assert "distribute must be a strategy name or a mapping, got int 5" in result.stdout
    fixed = ["--set", "train.distribute=mirrored", "--set", "train.precision=mixed_bfloat16"]
    invoke(["validate", spec, *fixed])


def test_multi_worker_needs_out_and_a_tf_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TF_CONFIG", raising=False)
    result = invoke(["train", DIGITS, "--strategy", "multi_worker"], exit_code=1)
    assert "the multi_worker strategy needs the cluster in the TF_CONFIG" in result.output
    monkeypatch.setenv("TF_CONFIG", tf_config(free_ports(2), 0))
    result = invoke(["train", DIGITS, "--strategy", "multi_worker"], exit_code=2)
    assert "a multi_worker run needs --out" in result.output


# -- the strategies, really run ----------------------------------------------


def kgraph(args: list[Any], tmp: Path, **env: str) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmp), **env}
    return subprocess.Popen(
        [*KGRAPH, *map(str, args)],
        env=environment,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(process: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def history(run: Path) -> dict[str, list[float]]:
    return json.loads((run / "history.json").read_text())


@pytest.mark.tf
def test_mirrored_over_two_logical_cpus(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", DIGITS, "--strategy", "mirrored", "--out", out, "--epochs", "2", "--json"]
    args += ["--set", "train.distribute.cpu_devices=2"]
    code, stdout, stderr = finished(kgraph(args, tmp_path))
    assert code == 0, stderr
    assert "strategy mirrored: 2 replica(s) in sync" in stderr
    result = json.loads(stdout)
    assert result["epochs"] == 2 and result["metrics"]["test"]["accuracy"] > 0.8
    assert (out / "model.keras").is_file() and not (out / "backup").exists()


@pytest.mark.tf
def test_mirrored_without_gpus_or_logical_devices_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", DIGITS, "--strategy", "mirrored", "--out", out]
    code, _, stderr = finished(kgraph(args, tmp_path, CUDA_VISIBLE_DEVICES="-1"))
    assert code == 1
    assert "the mirrored strategy found no GPU on this machine" in stderr
    assert "cpu_devices" in stderr and "Traceback" not in stderr
    assert not out.exists()


def start_workers(
    ports: list[int], out: Path, tmp: Path, epochs: int, indices: tuple[int, ...] = (0, 1)
) -> list[subprocess.Popen]:
    args = ["train", DIGITS, "--strategy", "multi_worker", "--out", out]
    args += ["--epochs", str(epochs), "--set", "train.distribute.timeout=60"]
    return [kgraph(args, tmp, TF_CONFIG=tf_config(ports, i)) for i in indices]


@pytest.mark.tf
def test_two_workers_train_digits_like_one_process(tmp_path: Path) -> None:
    out = tmp_path / "run"
    workers = start_workers(free_ports(2), out, tmp_path, epochs=5)
    results = [finished(worker) for worker in workers]
    for code, _, stderr in results:
        assert code == 0, stderr
    chief, other = (stderr + stdout for _, stdout, stderr in results)
    assert "worker 0 of 2 tasks" in chief and "(the chief); 2 replica(s) in sync" in chief
    assert "worker 1 of 2 tasks" in other and "(not the chief)" in other
    assert "this worker's files go to a temporary folder, removed at the end" in other
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] >= 0.95
    assert len(history(out)["loss"]) == 5
    # The other worker's files are gone; only the chief wrote the run.
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("kgraph-worker-")]


@pytest.mark.tf
def test_a_killed_worker_and_the_restarted_cluster_finish_the_run(tmp_path: Path) -> None:
    """Worker 1 is killed mid-run; worker 0 stops with exit 75 and keeps the
    run; both restarted with the same command resume from the last completed
    epoch and end with the history of an uninterrupted run's length."""
    out, epochs = tmp_path / "run", 8
    ports = free_ports(2)
    workers = start_workers(ports, out, tmp_path, epochs)
    deadline = time.monotonic() + 240
    while not ((out / "history.json").exists() and len(history(out).get("loss", [])) >= 2):
        assert time.monotonic() < deadline and workers[0].poll() is None, "no epochs recorded"
        time.sleep(0.05)
    before = history(out)
    workers[1].kill()
    code, _, stderr = finished(workers[0], timeout=180)
    workers[1].wait()
    assert code == 75, stderr
    assert "a peer stopped;" in stderr and "kept in" in stderr
    assert "restart every worker with the same command" in stderr
    assert "Traceback" not in stderr
    # The epochs backed up (the history may hold one more, which is redone).
    backed_up = json.loads((out / "backup" / "state.json").read_text())["epoch"]
    assert backed_up >= 1 and len(history(out)["loss"]) in (backed_up, backed_up + 1)
    restarted = [finished(worker) for worker in start_workers(ports, out, tmp_path, epochs)]
    for code, stdout, stderr in restarted:
        assert code == 0, stderr
        assert f"resuming the interrupted run in {out}" in stdout
    after = history(out)
    assert len(after["loss"]) == epochs
    assert after["loss"][:backed_up] == before["loss"][:backed_up]  # kept, not redone
    assert not (out / "backup").exists() and (out / "model.keras").is_file()


@pytest.mark.tf
def test_tpu_without_a_tpu_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, _, stderr = finished(
        kgraph(["train", DIGITS, "--strategy", "tpu", "--out", out], tmp_path)
    )
    assert code == 1
    assert "the tpu strategy found no TPU on this machine" in stderr
    assert "train.distribute.tpu" in stderr and "Traceback" not in stderr
    assert not out.exists()


@pytest.mark.tf
def test_evaluate_and_predict_under_mirrored_match_the_default(tmp_path: Path) -> None:
    import numpy as np

    run = tmp_path / "run"
    invoke(["train", DIGITS, "--epochs", "1", "--out", run, "-q"])
    mirrored = ["--strategy", "mirrored", "--set", "train.distribute.cpu_devices=2"]
    results = {}
    for name, extra in (("default", []), ("mirrored", mirrored)):
        code, stdout, stderr = finished(kgraph(["evaluate", run, "--json", *extra], tmp_path))
        assert code == 0, stderr
        results[name] = json.loads(stdout)["metrics"]
        out = tmp_path / f"{name}.npy"
        code, _, stderr = finished(kgraph(["predict", run, "-o", out, "-q", *extra], tmp_path))
        assert code == 0, stderr
    for metric, value in results["default"].items():
        assert results["mirrored"][metric] == pytest.approx(value, rel=1e-4)
    default, mirrored_out = np.load(tmp_path / "default.npy"), np.load(tmp_path / "mirrored.npy")
    assert default.shape == mirrored_out.shape == (359, 10)
    np.testing.assert_allclose(mirrored_out, default, atol=1e-4)
    # The strategy is really made: without logical devices there is no GPU to mirror over.
    code, _, stderr = finished(kgraph(["evaluate", run, "--strategy", "mirrored"], tmp_path))
    assert code == 1 and "the mirrored strategy found no GPU on this machine" in stderr


def test_evaluate_and_predict_refuse_multi_worker(tmp_path: Path) -> None:
    for command in (["evaluate", DIGITS], ["predict", DIGITS, "-o", tmp_path / "p.npy"]):
        result = invoke([*command, "--strategy", "multi_worker"], exit_code=2)
        assert "evaluate and predict run in one process" in result.output
    assert not (tmp_path / "p.npy").exists()
