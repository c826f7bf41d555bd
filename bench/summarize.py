#!/usr/bin/env python3
"""summarize.py RAW.csv [versions.txt [endpoints.csv]] -> markdown summary on stdout.

Groups peers.sh's raw.csv rows by (client, challenge, n) and reports the median
wall time over runs, per-cert ms (= median wall / n), the largest max-RSS seen,
ACME requests per cert as counted in pebble's log, and how many runs succeeded.
"""
import csv
import statistics
import sys
from collections import defaultdict

LABEL = {
    "floor": "floor-probe (own minimal Node loop, not a client)",
    "uacme": "uacme",
    "certbot": "certbot",
    "dehydrated": "dehydrated",
    "acmesh": "acme.sh",
    "lego": "lego",
    "mailcerts": "mailcerts",
}
ORDER = list(LABEL)


def main() -> None:
    rows = list(csv.DictReader(open(sys.argv[1])))
    groups = defaultdict(list)
    for r in rows:
        groups[(r["client"], r["challenge"], int(r["n"]))].append(r)

    if len(sys.argv) > 2:
        print("## Versions\n\n```")
        print(open(sys.argv[2]).read().rstrip())
        print("```\n")

    print("## Results\n")
    print("wall s = median over runs of the whole batch (fresh account + N sequential certs), "
          "from `/usr/bin/time -v`; per-cert ms = median wall / N; max RSS = largest over runs "
          "(largest single process in the batch's tree); req/cert = HTTP requests pebble's WFE "
          "logged during the batch / N (includes account setup).\n")
    print("| client | challenge | N | wall s (median) | per-cert ms | max RSS MB | req/cert | runs ok | key | wall s, each run |")
    print("|---|---|---:|---:|---:|---:|---:|---|---|---|")
    keys = sorted(groups, key=lambda k: (k[1] != "http-01", k[2], ORDER.index(k[0]) if k[0] in ORDER else 99))
    failures = []
    for k in keys:
        client, ch, n = k
        rs = groups[k]
        good = [r for r in rs if r["exit"] == "0" and int(r["certs_ok"]) == n]
        use = good or rs
        walls = [float(r["wall_s"]) for r in use if r["wall_s"] not in ("", "NA")]
        rss = [int(r["max_rss_kb"]) for r in use if r["max_rss_kb"] not in ("", "NA")]
        reqs = [int(r["acme_requests"]) for r in use]
        med = statistics.median(walls) if walls else float("nan")
        per = med / n * 1000
        key = next((r["key"] for r in use if r["key"]), "-")
        each = " / ".join(f"{w:.2f}" for w in walls)
        mark = "" if good else " (FAILED)"
        print(f"| {LABEL.get(client, client)}{mark} | {ch} | {n} | {med:.2f} | {per:.0f} | "
              f"{max(rss) / 1024 if rss else float('nan'):.1f} | "
              f"{statistics.median(reqs) / n:.1f} | {len(good)}/{len(rs)} | {key} | {each} |")
        for r in rs:
            if r not in good:
                failures.append(f"- {client} {ch} n={n} run={r['run']}: exit={r['exit']} certs_ok={r['certs_ok']}/{n}")
    if failures:
        print("\n### Failed batches\n")
        print("\n".join(failures))

    if len(sys.argv) > 3:
        endpoints(sys.argv[3])


COLS = ["dir", "nonce", "newAccount", "account", "newOrder", "authz", "chal", "finalize", "order", "cert", "other"]


def endpoints(path: str) -> None:
    rows = list(csv.DictReader(open(path)))
    if not rows:
        return
    groups = defaultdict(list)
    for r in rows:
        groups[(r["client"], r["challenge"], int(r["n"]))].append(r)
    print("\n## ACME requests by endpoint (pebble WFE log)\n")
    print("Median over runs. N=1 rows are the whole batch (GET directory, HEAD newNonce, newAccount, "
          "then one order); N>1 rows are divided by N (account setup amortised). `chal` counts both the "
          "challenge response POST and any polling of the challenge URL; `authz` / `order` include polls.\n")
    print("| client | challenge | N | " + " | ".join(COLS) + " | total |")
    print("|---|---|---:|" + "---:|" * (len(COLS) + 1))
    keys = sorted(groups, key=lambda k: (k[1] != "http-01", k[2], ORDER.index(k[0]) if k[0] in ORDER else 99))
    for k in keys:
        client, ch, n = k
        rs = groups[k]
        vals = [statistics.median(int(r[c]) for r in rs) / n for c in COLS]
        fmt = (lambda v: f"{v:.0f}") if n == 1 else (lambda v: f"{v:.2f}")
        print(f"| {LABEL.get(client, client)} | {ch} | {n} | " + " | ".join(fmt(v) for v in vals)
              + f" | {fmt(sum(vals))} |")


if __name__ == "__main__":
    main()
