"""Times the Spark path (cloud-aggregator/emr/driver.py) on local[2]: Spark session
start is timed separately and excluded, as in bench/pca/spark_pca.py.

usage: spark_path.py AGGREGATOR STORE K PARTITIONS REPEATS
"""
import argparse, json, pathlib, sys, time, uuid

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "cloud-aggregator" / "emr"))
import driver  # noqa: E402
from pyspark import SparkConf, SparkContext  # noqa: E402

binary, store, k, partitions, reps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
t = time.perf_counter()
sc = SparkContext.getOrCreate(SparkConf().setMaster("local[2]").setAppName("fruits-spark-path-bench")
                              .set("spark.ui.enabled", "false").set("spark.ui.showConsoleProgress", "false"))
sc.setLogLevel("ERROR")
sc.addPyFile(driver.__file__)
session_s = time.perf_counter() - t
times = []
for i in range(reps):
    # A fresh run id every time: an id the store already holds would resume from its
    # sketches and measure nothing (the store outlives one invocation of run.sh).
    args = argparse.Namespace(aggregator=binary, input=store, output=store, run_id=f"spark-bench-{uuid.uuid4().hex}", k=k,
                              partitions=partitions, model_id=None, signing_key=None, fail_once_marker=None)
    t = time.perf_counter()
    report = driver.run(sc, args)
    times.append(time.perf_counter() - t)
sc.stop()
print(json.dumps({"spark_session_start_s": session_s, "spark_path_s": min(times), "spark_path_all_s": times,
                  "rows": report["rows"], "partitions": report["partitions"]}))
