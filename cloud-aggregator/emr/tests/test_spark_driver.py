"""The Spark path for real: pyspark in local mode driving the aggregator binary,
against Garage (S3 on loopback) and local directories.

Run: python3 -m pytest cloud-aggregator/emr/tests (scripts/test.sh does, after
cargo has built target/debug/aggregator; FRUITS_AGGREGATOR overrides the binary).
"""

import argparse
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "cloud-aggregator" / "emr"))
import driver  # noqa: E402
from pyspark import SparkConf, SparkContext  # noqa: E402

K = 6


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def binary():
    path = os.environ.get("FRUITS_AGGREGATOR")
    if not path:
        subprocess.run(["cargo", "build", "--locked", "-p", "fruits-aggregator", "--bin", "aggregator"], cwd=ROOT,
                       check=True)
        path = str(ROOT / "target" / "debug" / "aggregator")
    return path


@pytest.fixture(scope="session")
def garage(tmp_path_factory):
    """A single-node Garage of our own; its AWS_* / FRUITS_S3_* environment is exported
    to this process, hence to Spark's Python workers and the aggregator they run."""
    env = dict(os.environ,
               FRUITS_GARAGE_DIR=str(tmp_path_factory.mktemp("garage")),
               FRUITS_GARAGE_S3_PORT=str(free_port()),
               FRUITS_GARAGE_RPC_PORT=str(free_port()),
               FRUITS_GARAGE_ADMIN_PORT=str(free_port()))
    script = str(ROOT / "scripts" / "garage.sh")
    out = subprocess.run(["bash", script, "start"], env=env, check=True, capture_output=True, text=True).stdout
    exported = dict(line.removeprefix("export ").split("=", 1) for line in out.splitlines() if line.startswith("export "))
    saved = {k: os.environ.get(k) for k in exported}
    os.environ.update(exported)
    yield exported
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    subprocess.run(["bash", script, "stop"], env=env, check=False)


@pytest.fixture(scope="session")
def spark(garage):  # after garage: Spark's workers inherit the S3 environment at start
    # local[2,2]: two cores, and a failed task is retried once (spark.task.maxFailures = 2).
    sc = SparkContext.getOrCreate(SparkConf().setMaster("local[2,2]").setAppName("fruits-spark-tests")
                                  .set("spark.ui.enabled", "false"))
    # The driver module is imported here, not run as spark-submit's main script: ship it.
    sc.addPyFile(driver.__file__)
    yield sc
    sc.stop()


def agg(binary, *args):
    return subprocess.run([binary, *map(str, args)], check=True, capture_output=True, text=True).stdout


def spark_run(sc, binary, input_url, output_url, run_id, partitions=5, fail_once_marker=None):
    args = argparse.Namespace(aggregator=binary, input=str(input_url), output=str(output_url), run_id=run_id, k=K,
                              partitions=partitions, model_id=None, signing_key=None,
                              fail_once_marker=fail_once_marker and str(fail_once_marker))
    return driver.run(sc, args)


def artifact(binary, url):
    return json.loads(agg(binary, "inspect", url, "--json"))


def assert_same_projection(a, b, tol=1e-6):
    assert (a["rows"], a["k"], a["dim"]) == (b["rows"], b["k"], b["dim"])
    np.testing.assert_allclose(a["mean"], b["mean"], rtol=0, atol=tol)
    np.testing.assert_allclose(a["explained_variance"], b["explained_variance"], rtol=tol)
    ca = np.array(a["components"]).reshape(a["k"], a["dim"])
    cb = np.array(b["components"]).reshape(b["k"], b["dim"])
    signs = np.sign(np.sum(ca * cb, axis=1))[:, None]
    np.testing.assert_allclose(ca, cb * signs, rtol=0, atol=tol)


def test_spark_on_garage_matches_aggregator_run_and_survives_a_failed_task(binary, garage, spark, tmp_path):
    synth = agg(binary, "synth", "--rows", 6000, "--dim", 48, "--shards", 11, "--out", "s3://fruits/t1/", "--seed", 3)
    model = json.loads(synth)["model_id"]  # each model has its own projection series
    marker = tmp_path / "failed-once"
    report = spark_run(spark, binary, "s3://fruits/t1/", "s3://fruits/t1/", "spark-1", fail_once_marker=marker)
    assert marker.exists(), "the injected failure happened, and Spark retried the task"
    assert (report["shards_read"], report["shards_rejected"], report["rows"]) == (11, 0, 6000)
    assert report["published"]["version"] == 1

    agg(binary, "run", "--input", "s3://fruits/t1/", "--output", "s3://fruits/t1-run/", "--k", K, "--run-id", "r")
    ours = artifact(binary, f"s3://fruits/t1/models/projection/{model}/v1.bin")
    reference = artifact(binary, f"s3://fruits/t1-run/models/projection/{model}/v1.bin")
    assert_same_projection(ours, reference)


def test_a_rerun_resumes_from_the_sketches_already_written(binary, spark, tmp_path):
    store = tmp_path / "store"
    agg(binary, "synth", "--rows", 3000, "--dim", 32, "--shards", 6, "--out", store, "--seed", 5)
    first = spark_run(spark, binary, str(store), str(store), "resume", partitions=3)
    sketches = sorted((store / "runs" / "resume" / "sketches").glob("part-*.sketch"))
    assert len(sketches) == 3
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sketches}
    second = spark_run(spark, binary, str(store), str(store), "resume", partitions=3)
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sketches} == before, "resumed, not recomputed"
    assert (second["rows"], second["shards_read"]) == (first["rows"], first["shards_read"]) == (3000, 6)
    assert second["published"] == first["published"], "the same projection is not published twice"
    assert list(store.glob("models/projection/*/v1.bin")) and not list(store.glob("models/projection/*/v2.bin"))


def test_a_corrupt_shard_is_quarantined_and_counted(binary, spark, tmp_path):
    store = tmp_path / "store"
    agg(binary, "synth", "--rows", 2000, "--dim", 32, "--shards", 5, "--out", store, "--seed", 7)
    victim = sorted(store.glob("incoming/**/*.shard"))[2]
    victim.write_bytes(victim.read_bytes()[:100])
    report = spark_run(spark, binary, str(store), str(store), "corrupt", partitions=2)
    assert (report["shards_read"], report["shards_accepted"], report["shards_rejected"]) == (5, 4, 1)
    assert report["rejections"][0]["kind"] == "truncated"
    assert (store / "quarantine" / "corrupt" / victim.relative_to(store)).exists()
    assert report["rows"] == 2000 - 400
