#!/usr/bin/env bash
# One measured SCIM load run of gatehouse on this machine: builds gatehouse
# and scimload, prepares an organization with USERS load users, starts
# gatehouse on a free loopback port, runs every scimload scenario against it
# (with its peak memory) and stops it.
#
#   cmd/scimload/load.sh                        # a fresh SQLite file in a temp dir
#   USERS=1000000 cmd/scimload/load.sh
#   cmd/scimload/load.sh 'postgres://user:secret@127.0.0.1:5432/gatehouse_load'
#
# The database is the first argument, else GATEHOUSE_DB, else a new SQLite
# file deleted afterwards. An existing organization and its load users are
# reused (seeding resumes or does nothing), so one PostgreSQL database serves
# many runs. Environment: USERS (100000), DURATION (10s per scenario),
# CONCURRENCY (16), SCENARIOS (all), ORG (load), RESULTS (write the results
# there as JSON), LOG (keep gatehouse's log there), and gatehouse's own
# GATEHOUSE_* variables such as GATEHOUSE_SQLITE_SYNCHRONOUS.
set -euo pipefail

users=${USERS:-100000}
org=${ORG:-load}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/scimload.XXXXXX")
dsn=${1:-${GATEHOUSE_DB:-$work/gatehouse.db}}
log=${LOG:-$work/gatehouse.log}
server=

cleanup() {
	if [[ -n $server ]]; then
		kill "$server" 2>/dev/null || true # SIGTERM: gatehouse drains and exits
		wait "$server" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

fail() {
	echo "load.sh: $*" >&2
	if [[ -s $log ]]; then
		echo "--- last lines of gatehouse's log:" >&2
		tail -n 30 "$log" >&2
	fi
	exit 1
}

command -v curl >/dev/null || fail "curl is needed to wait for /readyz"
# shellcheck source=lib.sh
source "$repo/cmd/scimload/lib.sh"
build_tools
describe_db
echo "== organization $org, database: $db"
create_org "$org" "Load test"

echo "== seeding $users users"
"$work/scimload" seed --db "$dsn" --org "$org" --users "$users"

token=$(gatehouse scim token create --org "$org" --description "scimload $(date -u +%FT%TZ)" --expires 1d 2>"$work/token.err") ||
	fail "scim token create: $(cat "$work/token.err")"
gatehouse scim enable --org "$org"

serve_gatehouse "$log"
echo "== gatehouse on http://$addr (pid $server)"

args=(run --base "http://$addr" --token "$token" --pid "$server" --users "$users"
	--duration "${DURATION:-10s}" --concurrency "${CONCURRENCY:-16}")
[[ -n ${SCENARIOS:-} ]] && args+=(--scenario "$SCENARIOS")
[[ -n ${RESULTS:-} ]] && args+=(--json "$RESULTS")
"$work/scimload" "${args[@]}" || fail "scimload run failed (exit $?)"
# What the provisioning log kept of the run (nothing when it is off).
curl -fsS --noproxy '*' "http://$addr/metrics" | grep '^gatehouse_scim_log_' || true
