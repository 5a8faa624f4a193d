"""Overhead of Dask (distributed) and Ray on this machine: why the labelling job runs on Dask.

    .venv/bin/python scripts/bench_cluster_overhead.py [--tasks 2000] [--workers 2]

For each framework that imports here: seconds to start a local cluster of `--workers` single-threaded
worker processes and get a first result back, then the per-task overhead of `--tasks` empty tasks
submitted at once (wall seconds / tasks), then shutdown. Prints one JSON line per framework.
"""

from __future__ import annotations

import argparse
import json
import logging
import time


def noop(x: int) -> int:
    return x


def bench_dask(workers: int, tasks: int) -> dict:
    from distributed import Client, LocalCluster

    started = time.perf_counter()
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=logging.ERROR)
    client = Client(cluster)
    client.submit(noop, 0).result()
    startup = time.perf_counter() - started
    began = time.perf_counter()
    futures = client.map(noop, range(tasks), pure=False)
    client.gather(futures)
    per_task = (time.perf_counter() - began) / tasks
    began = time.perf_counter()
    client.close()
    cluster.close()
    import distributed

    return {"framework": f"dask.distributed {distributed.__version__}", "startup_s": round(startup, 2),
            "per_task_ms": round(per_task * 1000, 3), "shutdown_s": round(time.perf_counter() - began, 2)}


def bench_ray(workers: int, tasks: int) -> dict:
    import ray

    started = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    remote = ray.remote(num_cpus=1)(noop)
    ray.get(remote.remote(0))
    startup = time.perf_counter() - started
    began = time.perf_counter()
    ray.get([remote.remote(i) for i in range(tasks)])
    per_task = (time.perf_counter() - began) / tasks
    began = time.perf_counter()
    ray.shutdown()
    return {"framework": f"ray {ray.__version__}", "startup_s": round(startup, 2),
            "per_task_ms": round(per_task * 1000, 3), "shutdown_s": round(time.perf_counter() - began, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    for name, bench in (("distributed", bench_dask), ("ray", bench_ray)):
        try:
            __import__(name)
        except ImportError:
            print(json.dumps({"framework": name, "skipped": "not installed"}))
            continue
        print(json.dumps(bench(args.workers, args.tasks)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
