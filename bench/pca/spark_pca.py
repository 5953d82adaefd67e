"""Spark MLlib PCA(k) on local[2]: export the .npy to Parquet once (untimed), then
time read + fit end to end. Session start is timed separately and excluded.

usage: spark_pca.py DATA.npy DATA.parquet K REPEATS
"""
import json, os, sys, time
import numpy as np
from pyspark.sql import SparkSession
from pyspark.ml.feature import PCA
from pyspark.ml.linalg import Vectors

npy, parquet, k, reps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
t = time.perf_counter()
spark = (SparkSession.builder.master("local[2]").appName("fruits-pca-bench")
         .config("spark.driver.memory", "12g").config("spark.ui.enabled", "false")
         .config("spark.ui.showConsoleProgress", "false").getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
session_s = time.perf_counter() - t

if not os.path.exists(parquet):
    n, chunk = np.load(npy, mmap_mode="r").shape[0], 5_000
    def rows(i):
        x = np.load(npy, mmap_mode="r")[i:i + chunk].astype(np.float64)
        return [(Vectors.dense(r),) for r in x]
    rdd = spark.sparkContext.parallelize(range(0, n, chunk), n // chunk).flatMap(rows)
    spark.createDataFrame(rdd, ["features"]).write.parquet(parquet)

times = []
for _ in range(reps):
    t = time.perf_counter()
    model = PCA(k=k, inputCol="features", outputCol="pca").fit(spark.read.parquet(parquet))
    times.append(time.perf_counter() - t)
print(json.dumps({"spark_session_start_s": session_s, "spark_mllib_pca_s": min(times), "all_s": times,
                  "spark_explained_variance_ratio_top5": model.explainedVariance.toArray()[:5].tolist()}))
spark.stop()
