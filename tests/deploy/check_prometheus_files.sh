#!/usr/bin/env bash
# Offline checks of the monitoring deployment files, one per ctest case:
#   check_prometheus_files.sh check-config|check-rules|test-rules|grafana-json [ROOT]
# ROOT (default: this checkout) holds deploy/prometheus and deploy/grafana, so a copy with a
# broken file can be checked too. Exit 0 pass, 1 fail, 77 skipped (tool missing).
set -euo pipefail
mode=${1:?usage: $0 check-config|check-rules|test-rules|grafana-json [ROOT]}
root=${2:-$(cd "$(dirname "$0")/../.." && pwd)}
here=$(cd "$(dirname "$0")" && pwd)
promtool=${PROMTOOL:-promtool}
cd "$root"

need() { command -v "$1" >/dev/null || { echo "SKIP: $1 not found ($2)"; exit 77; }; }

case "$mode" in
  check-config)
    need "$promtool" "Debian package prometheus"
    # Also loads and checks alerts.yml through rule_files.
    "$promtool" check config deploy/prometheus/prometheus.yml
    ;;
  check-rules)
    need "$promtool" "Debian package prometheus"
    "$promtool" check rules deploy/prometheus/alerts.yml
    ;;
  test-rules)
    need "$promtool" "Debian package prometheus"
    "$promtool" test rules deploy/prometheus/alerts_test.yml
    ;;
  grafana-json)
    need python3 "Debian package python3"
    dashboard=deploy/grafana/hds-training.json
    python3 - "$dashboard" <<'EOF'
import json, re, sys
path = sys.argv[1]
try:
    with open(path, encoding="utf-8") as f:
        d = json.load(f)
except ValueError as e:
    sys.exit(f"{path}: not JSON: {e}")
problems = []
def want(ok, what):
    if not ok:
        problems.append(what)
want(d.get("uid") == "hds-training", 'uid is not "hds-training"')
want(d.get("title") == "HDS training", 'title is not "HDS training"')
variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
ds = variables.get("datasource", {})
want(ds.get("type") == "datasource" and ds.get("query") == "prometheus",
     "no datasource variable of type datasource / prometheus")
job = variables.get("hds_job", {})
query = job.get("query")
query = query.get("query") if isinstance(query, dict) else query
want(query == "label_values(hds_train_global_step, hds_job)",
     "hds_job variable is not label_values(hds_train_global_step, hds_job)")
FILTER = 'hds_job=~"$hds_job"'
def panels(items):
    for p in items:
        yield p
        yield from panels(p.get("panels", []))
count = 0
for p in panels(d.get("panels", [])):
    if p.get("type") == "row":
        continue
    count += 1
    name = f'panel {p.get("id")} "{p.get("title")}"'
    want((p.get("datasource") or {}).get("uid") == "${datasource}", f"{name}: datasource is not ${{datasource}}")
    targets = [t for t in p.get("targets", []) if t.get("expr", "").strip()]
    want(targets, f"{name}: no target with an expr")
    for t in targets:
        e = t["expr"]
        want((t.get("datasource") or {}).get("uid") == "${datasource}",
             f"{name}: target {t.get('refId')} datasource is not ${{datasource}}")
        want(t.get("legendFormat"), f"{name}: target {t.get('refId')} has no legendFormat")
        # Every hds_ metric needs the job filter. Quoted strings and label lists (by, on, ...)
        # are blanked (same length) and matcher label names (an operator follows) skipped, so
        # only metric names are looked at.
        bare = re.sub(r'"(?:[^"\\]|\\.)*"', lambda q: '"' + " " * (len(q.group(0)) - 2) + '"', e)
        bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)",
                      lambda g: " " * len(g.group(0)), bare)
        for m in re.finditer(r"\b(hds_\w+)\b(?!\s*(=~|!~|!=|=))", bare):
            rest = e[m.end():]
            sel = re.match(r"\{([^}]*)\}", rest)
            want(sel and FILTER in sel.group(1), f"{name}: {m.group(1)} without {{{FILTER}}} in {e}")
        for w in re.findall(r"\[([^\]]*)\]", e):
            want(w == "1m", f"{name}: range [{w}] is not [1m] in {e}")
want(count > 0, "no panels")
if problems:
    print("\n".join(f"{path}: {p}" for p in problems))
    sys.exit(1)
print(f"{path}: {count} panels, every one with a filtered expr")
EOF
    # The integration test reads the expressions through this script.
    out=$(python3 "$here/dashboard_queries.py" "$dashboard")
    [ -n "$out" ] || { echo "dashboard_queries.py printed nothing"; exit 1; }
    if grep -n '\$' <<<"$out"; then echo "dashboard_queries.py left a variable in"; exit 1; fi
    echo "$(wc -l <<<"$out") distinct expressions"
    ;;
  *)
    echo "unknown mode $mode"; exit 2 ;;
esac
