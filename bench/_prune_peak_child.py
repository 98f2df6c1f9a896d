"""Peak resident memory of one ``prune`` call, in a fresh process.

Usage: python _prune_peak_child.py METHOD WIDTH [ITERATIONS] [COMPAT]

Builds the Synaptic-Flow fc net (3 hidden layers of WIDTH, digits input, the
pruning batch of gntk_fast.experiments.tasks), prunes it to 90% sparsity,
global scope, and prints JSON: wall time, VmHWM (the process's high-water
mark) before and after the call, and a digest of the masks (to compare two
versions of the code).
"""
import hashlib
import json
import sys
import time


def hwm_gib() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 2**20


def main() -> None:
    from gntk_fast.experiments.tasks import DEFAULTS, _d_in, _model_seed, _n_classes, _pruning_batch
    from gntk_fast.models import fc
    from gntk_fast.pruning import prune

    method, width = sys.argv[1], int(sys.argv[2])
    iterations = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] != "-" else None
    compat = sys.argv[4] if len(sys.argv) > 4 else "synaptic-flow"
    cfg = {**DEFAULTS, "width": width, "depth": 3, "data": "digits", "method": method}
    s = _model_seed(cfg)
    x, y = _pruning_batch("digits", cfg["seed"], None)
    # warm-up on a tiny net (imports, compilation)
    prune(fc(_d_in("digits"), 16, 3, _n_classes("digits"), seed=s), method, 0.9, data=(x, y),
          iterations=iterations, compat=compat, seed=s, progress=False)
    net = fc(_d_in("digits"), width, 3, _n_classes("digits"), seed=s)
    before = hwm_gib()
    t0 = time.perf_counter()
    res = prune(net, method, 0.9, data=(x, y), iterations=iterations, compat=compat, seed=s, progress=False)
    dt = time.perf_counter() - t0
    h = hashlib.sha256()
    for m in res.masks:
        h.update(m.cpu().numpy().tobytes())
    print(json.dumps({"method": method, "width": width, "compat": compat, "seconds": round(dt, 1),
                      "peak_rss_GiB": round(hwm_gib(), 3), "rss_before_GiB": round(before, 3),
                      "masks_sha256": h.hexdigest()[:16]}))


if __name__ == "__main__":
    main()
