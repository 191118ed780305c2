"""Batch model vs exact reference on the test suite's 216 random placements.

Prints, per (array, topology) and overall, the distribution of batch/reference ratios of
latency and most-loaded link, and the largest relative error of byte-hops and energy: the
numbers behind docs/tolerances.md and tests/test_agreement.py.
"""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from agreement_cases import pairs  # noqa: E402


def main() -> None:
    groups: dict = {}
    exact = []
    for (wn, hn, topo, i), c, r in pairs():
        g = groups.setdefault((hn, topo), {"lat": [], "link": []})
        g["lat"].append(c["latency_cycles"] / r["latency_cycles"])
        if r["max_link_bytes"] > 0:  # else nothing crosses the mesh in either model
            g["link"].append(c["max_link_bytes"] / r["max_link_bytes"])
        exact.append((abs(c["byte_hops"] / r["byte_hops"] - 1), abs(c["energy_pj"] / r["energy_pj"] - 1)))

    def line(name, v):
        v = np.asarray(v)
        e = np.abs(v - 1)
        return (f"{name:28s} n={len(v):3d} |err| median {np.median(e):6.3f} p90 "
                f"{np.percentile(e, 90):6.3f} max {e.max():6.3f}  ratio {v.min():.2f}..{v.max():.2f}")
    for q, label in (("lat", "latency"), ("link", "most-loaded link")):
        print(label)
        for k, g in groups.items():
            print("  " + line(f"{k[0]}/{k[1]}", g[q]))
        print("  " + line("all", [x for g in groups.values() for x in g[q]]))
    ex = np.array(exact)
    print(f"byte-hops max relative error {ex[:, 0].max():.2e}; energy {ex[:, 1].max():.2e}")


if __name__ == "__main__":
    main()
