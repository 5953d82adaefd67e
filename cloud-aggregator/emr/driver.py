"""The aggregator as a Spark job: Spark schedules, retries and scales; the Rust
`aggregator` binary does all the work. Nothing about the algorithm lives here.

    spark-submit cloud-aggregator/emr/driver.py --store s3://bucket/ \
        [--run-id r42] [--k 50] [--partitions 64] [--signing-key /secure/publisher.key] \
        [--aggregator /usr/local/bin/aggregator]

(--store is both --input and --output; give those separately to read and write
different places.)

1. plan (driver): `aggregator plan` lists `incoming/` shards, fixes the model and
   dimension every shard is held to, and splits the keys into partitions.
2. map (executors): one `aggregator sketch` per partition writes
   `runs/<run>/sketches/part-NNNNN.sketch` (+ `.outcomes.json`). `--resume` makes a
   retried, speculative or resumed task a no-op once its sketch exists: rerunning
   the job with the same run id continues from the sketches already written.
3. reduce (executors): a binary tree of `aggregator merge` tasks, level by level,
   in partition order, into `runs/<run>/sketches/merge-L-NNNNN.sketch`.
4. finalize (driver): `aggregator finalize` publishes the signed projection.

The binary is found on PATH (EMR: installed by deploy/bootstrap/install-aggregator.sh)
or passed with --aggregator. S3 settings reach executors through the usual AWS
environment (instance role on EMR). For tests, --fail-once-marker FILE makes the
first sketch task to run fail once, so that Spark's task retry is exercised.
"""

import argparse
import json
import os
import subprocess
import sys
import time

from pyspark import SparkConf, SparkContext


def aggregator(binary, *args):
    """Runs one aggregator step; its stdout (JSON). Raises on failure, so Spark retries."""
    done = subprocess.run([binary, *map(str, args)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"aggregator {args[0]} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def fail_once(marker):
    """Fault injection for tests: fails the first task that finds no marker file."""
    if marker and not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError(f"injected task failure ({marker})")


def run(sc, args):
    """Plans, sketches, merges and finalizes; the run's report (a dict)."""
    binary, output = args.aggregator, args.output.rstrip("/") + "/"
    plan = json.loads(aggregator(binary, "plan", "--input", args.input, "--partitions", args.partitions,
                                 *(["--model-id", args.model_id] if args.model_id else [])))
    sketches = f"{output}runs/{args.run_id}/sketches/"

    def sketch(task):
        index, keys = task
        fail_once(args.fail_once_marker)
        out = f"{sketches}part-{index:05d}.sketch"
        outcomes = aggregator(binary, "sketch", "--input", args.input, "--output", output, "--run-id", args.run_id,
                              "--model-id", plan["model_id"], "--out", out, "--resume", *keys)
        return out, json.loads(outcomes)

    parts = list(enumerate(plan["partitions"]))
    mapped = sc.parallelize(parts, len(parts)).map(sketch).collect()
    outcomes = [o for _, per_part in mapped for o in per_part]

    level, depth = [out for out, _ in mapped], 0
    while len(level) > 1:
        pairs = [(i // 2, level[i:i + 2]) for i in range(0, len(level), 2)]

        def merge(task, depth=depth):
            index, inputs = task
            if len(inputs) == 1:
                return inputs[0]
            out = f"{sketches}merge-{depth}-{index:05d}.sketch"
            aggregator(binary, "merge", "--out", out, *inputs)
            return out

        level = sc.parallelize(pairs, len(pairs)).map(merge).collect()
        depth += 1

    latest = json.loads(aggregator(binary, "finalize", "--sketch", level[0], "--output", output, "--k", args.k,
                                   *(["--signing-key", args.signing_key] if args.signing_key else [])))
    rejected = [o["rejection"] for o in outcomes if o["rejection"]]
    return {
        "run_id": args.run_id,
        "partitions": len(parts),
        "shards_read": len(outcomes),
        "shards_accepted": len(outcomes) - len(rejected),
        "shards_rejected": len(rejected),
        "rejections": rejected,
        "rows": sum(o["rows"] for o in outcomes),
        "sketch": level[0],
        "published": latest,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", help="directory or s3://bucket/prefix: both --input and --output")
    ap.add_argument("--input", help="directory or s3://bucket/prefix holding incoming/")
    ap.add_argument("--output", help="directory or s3://bucket/prefix for runs/, models/, quarantine/")
    ap.add_argument("--run-id", default=time.strftime("run-%Y%m%dT%H%M%SZ", time.gmtime()),
                    help="names runs/<run>/; rerun with the same id to resume (default: run-<UTC time>)")
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--partitions", type=int, default=16)
    ap.add_argument("--model-id")
    ap.add_argument("--signing-key")
    ap.add_argument("--aggregator", default="aggregator")
    ap.add_argument("--master", help="Spark master (default: spark-submit's)")
    ap.add_argument("--fail-once-marker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.input, args.output = args.input or args.store, args.output or args.store
    if not (args.input and args.output):
        ap.error("give --store, or both --input and --output")
    conf = SparkConf().setAppName(f"fruits-aggregator-{args.run_id}")
    if args.master:
        conf = conf.setMaster(args.master)
    sc = SparkContext.getOrCreate(conf)
    try:
        report = run(sc, args)
    finally:
        sc.stop()
    json.dump(report, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
