#!/usr/bin/env python3
"""Print every distinct PromQL expression of a Grafana dashboard, one per line, in panel order.

$hds_job (and ${hds_job}) become ".+", the regex the dashboard's "All" stands for, so each line
runs as is against Prometheus' /api/v1/query; the ${datasource} variable only appears in the
datasource fields, which are not printed. With --cpu-only, panels whose description says
"CUDA ranks only" are left out (they have no data on a CPU run).

usage: dashboard_queries.py [--cpu-only] [DASHBOARD_JSON]   (default: deploy/grafana/hds-training.json)
"""
import json
import os
import re
import sys

CUDA_ONLY = "CUDA ranks only"


def panels(items):
    # Rows may nest their panels (collapsed rows keep them under "panels").
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


def main(argv):
    args = [a for a in argv if a != "--cpu-only"]
    cpu_only = len(args) != len(argv)
    default = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                           "deploy", "grafana", "hds-training.json")
    path = args[0] if args else default
    with open(path, encoding="utf-8") as f:
        dashboard = json.load(f)
    seen = set()
    for panel in panels(dashboard.get("panels", [])):
        if cpu_only and CUDA_ONLY in panel.get("description", ""):
            continue
        for target in panel.get("targets", []):
            expr = target.get("expr", "").strip()
            if not expr:
                continue
            expr = re.sub(r"\$\{hds_job(:[a-z]+)?\}|\$hds_job\b", ".+", expr)
            expr = " ".join(expr.split())  # one line each, even if the JSON had newlines
            if expr not in seen:
                seen.add(expr)
                print(expr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
