"""Child process of bench_scaling.py: run one task of gntk_fast.experiments.tasks
and print its wall time and this process's peak resident memory as JSON.

Usage: python _scaling_child.py '<task config JSON>' ['<warm-up config JSON>']

The warm-up config (a small task of the same kind) runs first so that Numba
compilation and imports are not timed; the peak memory reported is VmHWM
(the process's high-water mark, which ru_maxrss would inherit from the
parent across exec), with the value after the warm-up given separately.
"""
import json
import sys
import time


def hwm_gib() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 2**20


def main() -> None:
    from gntk_fast.experiments.tasks import run_task

    cfg = json.loads(sys.argv[1])
    if len(sys.argv) > 2:
        run_task(json.loads(sys.argv[2]))
    before = hwm_gib()
    t0 = time.perf_counter()
    out = run_task(cfg)
    dt = time.perf_counter() - t0
    rows = out.rows
    print(json.dumps({"seconds": dt, "peak_rss_GiB": hwm_gib(), "rss_after_warmup_GiB": before,
                      "kept": sum(r.get("kept") or 0 for r in rows if r.get("layer") is not None),
                      "density": [r.get("density") for r in rows]}))


if __name__ == "__main__":
    main()
