#!/usr/bin/env bash
# The provisioning log's cost: load.sh on one kept SQLite database, with the
# log off (GATEHOUSE_SCIM_LOG_KEEP=0) and on (the default, 10,000 a
# organization) in turn, ROUNDS times each, and the medians of each
# scenario's ratio to the ceiling of its own run, its requests/s and
# gatehouse's CPU time per request, and what the log kept (its metrics).
#
#   cmd/scimload/provlog.sh            # USERS=20000 ROUNDS=3 DURATION=5s
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/provlog-load.XXXXXX")
trap 'rm -rf "$work"' EXIT
export GATEHOUSE_DB=$work/gatehouse.db USERS=${USERS:-20000} DURATION=${DURATION:-5s}
export SCENARIOS=${SCENARIOS:-ceiling,get,filter,create}
rounds=${ROUNDS:-3}

# The order alternates (off first in odd rounds, on first in even ones):
# each run adds the users its create scenario makes, so a later run of a
# round measures a larger database.
for round in $(seq "$rounds"); do
	order="0 10000"
	((round % 2 == 0)) && order="10000 0"
	for keep in $order; do
		echo "== round $round, GATEHOUSE_SCIM_LOG_KEEP=$keep"
		GATEHOUSE_SCIM_LOG_KEEP=$keep RESULTS=$work/r$round-k$keep.json "$repo/cmd/scimload/load.sh" >"$work/r$round-k$keep.out" 2>&1 ||
			{ cat "$work/r$round-k$keep.out"; exit 1; }
		grep -E '^(ceiling|get|filter|create) |^gatehouse_scim_log_' "$work/r$round-k$keep.out" || true
	done
done

python3 - "$work" "$rounds" <<'PY'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
runs = {k: [json.load(open(f"{work}/r{r}-k{k}.json")) for r in range(1, rounds + 1)] for k in (0, 10000)}
def med(k, name, field):
    vals = [s[field] for run in runs[k] for s in run["scenarios"] if s["scenario"] == name]
    return statistics.median(vals), min(vals), max(vals)
print("Medians of %d rounds (ranges beside them): ratio to the ceiling of the same run, requests/s," % rounds)
print("and gatehouse's CPU time per request (scimload run --pid, read 1 s after the scenario).")
print()
print("| scenario | log off | log on | on / off: ratio | requests/s | CPU a request |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
print("| ceiling | %.0f/s | %.0f/s | | | |" % (med(0, "ceiling", "requests_per_second")[0], med(10000, "ceiling", "requests_per_second")[0]))
for name in ("get", "filter", "create"):
    off, on = med(0, name, "ceiling_ratio"), med(10000, name, "ceiling_ratio")
    rps = med(0, name, "requests_per_second")[0], med(10000, name, "requests_per_second")[0]
    cpu = med(0, name, "server_cpu_ms_per_request"), med(10000, name, "server_cpu_ms_per_request")
    print("| %s | %.3f× (%.3f–%.3f), %.0f/s, %.3f ms CPU (%.3f–%.3f) | %.3f× (%.3f–%.3f), %.0f/s, %.3f ms CPU (%.3f–%.3f) | %.3f | %.3f | %.3f |" %
          (name, off[0], off[1], off[2], rps[0], cpu[0][0], cpu[0][1], cpu[0][2],
           on[0], on[1], on[2], rps[1], cpu[1][0], cpu[1][1], cpu[1][2],
           on[0] / off[0], rps[1] / rps[0], cpu[1][0] / cpu[0][0]))
PY
