#!/usr/bin/env bash
# One measured run of gatehouse's OpenID Provider on this machine: builds
# gatehouse and scimload, prepares an organization, starts INSTANCES
# gatehouse serve on free loopback ports (one database), runs scimload op
# (code exchange and introspection beside the ceiling) against the first
# and scimload logout (SCIM deactivation to back-channel logout) across all
# of them, and stops them.
#
#   cmd/scimload/op.sh                        # a fresh SQLite file, one instance
#   cmd/scimload/op.sh 'postgres://user:secret@127.0.0.1:5432/gatehouse_load'   # two instances
#
# The database is the first argument, else GATEHOUSE_DB, else a new SQLite
# file deleted afterwards. Environment: INSTANCES (2 on PostgreSQL, 1 on
# SQLite), PARTS (op,logout), ROUNDS (3), DURATION (5s per scenario and
# round), CONCURRENCY (16), CODES (1500 per round), ADMINISTRATORS (100
# logged out), INTERVAL (0s between deactivations), ORG (opload), RESULTS
# (a prefix: RESULTS-op.json and RESULTS-logout.json), LOG (a prefix for
# the instances' logs), and gatehouse's own GATEHOUSE_* variables.
set -euo pipefail

org=${ORG:-opload}
parts=${PARTS:-op,logout}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/opload.XXXXXX")
dsn=${1:-${GATEHOUSE_DB:-$work/gatehouse.db}}
logs=${LOG:-$work/gatehouse}
servers=()
server= # the one serve_gatehouse is starting

cleanup() {
	for pid in "${servers[@]}" ${server:+"$server"}; do
		kill "$pid" 2>/dev/null || true # SIGTERM: gatehouse drains and exits
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

fail() {
	echo "op.sh: $*" >&2
	for log in "$logs".*.log; do
		[[ -s $log ]] || continue
		echo "--- last lines of $log:" >&2
		tail -n 30 "$log" >&2
	done
	exit 1
}

command -v curl >/dev/null || fail "curl is needed to wait for /readyz"
# shellcheck source=lib.sh
source "$repo/cmd/scimload/lib.sh"
build_tools
describe_db
instances=${INSTANCES:-1}
[[ $db == PostgreSQL ]] && instances=${INSTANCES:-2}
echo "== organization $org, database: $db, $instances instances"
create_org "$org" "OP load test"
token=$(gatehouse scim token create --org "$org" --description "scimload logout $(date -u +%FT%TZ)" --expires 1d 2>"$work/token.err") ||
	fail "scim token create: $(cat "$work/token.err")"
gatehouse scim enable --org "$org"

# Instances on one database share the secret key (the signing key is
# sealed with it): gatehouse's default key file (beside a SQLite database,
# else data/secret.key in this folder), or GATEHOUSE_SECRET_KEY(_FILE).
bases=()
for i in $(seq "$instances"); do
	serve_gatehouse "$logs.$i.log"
	servers+=("$server")
	echo "== gatehouse $i on http://$addr (pid $server)"
	bases+=("http://$addr")
done

status=0
if [[ ,$parts, == *,op,* ]]; then
	args=(op --base "${bases[0]}" --pid "${servers[0]}" --db "$dsn" --org "$org" --rounds "${ROUNDS:-3}" --duration "${DURATION:-5s}"
		--concurrency "${CONCURRENCY:-16}" --codes "${CODES:-1500}")
	[[ -n ${RESULTS:-} ]] && args+=(--json "$RESULTS-op.json")
	"$work/scimload" "${args[@]}" || status=1
fi
if [[ ,$parts, == *,logout,* ]]; then
	args=(logout --base "$(
		IFS=,
		echo "${bases[*]}"
	)" --db "$dsn" --org "$org" --token "$token" --administrators "${ADMINISTRATORS:-100}" --interval "${INTERVAL:-0s}")
	[[ -n ${RESULTS:-} ]] && args+=(--json "$RESULTS-logout.json")
	"$work/scimload" "${args[@]}" || status=1
fi
echo "== load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
[[ $status == 0 ]] || fail "scimload failed (see above)"
