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
# round), CONCURRENCY (16), CODES (3000 per round), ADMINISTRATORS (100
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

cleanup() {
	for pid in "${servers[@]}"; do
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
echo "== building gatehouse and scimload ($(go version | cut -d' ' -f3), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg))"
(cd "$repo" && go build -o "$work/gatehouse" ./cmd/gatehouse && go build -o "$work/scimload" ./cmd/scimload)
gatehouse() { "$work/gatehouse" "$@" --db "$dsn"; }

if [[ $dsn == postgres://* || $dsn == postgresql://* ]]; then
	db="PostgreSQL" # not the URL: it may hold a password
	instances=${INSTANCES:-2}
else
	path=${dsn#sqlite:}
	db="SQLite on $(stat -f -c %T "$(dirname "${path#//}")" 2>/dev/null || echo "a new folder")"
	instances=${INSTANCES:-1}
fi
echo "== organization $org, database: $db, $instances instances"
if ! out=$(gatehouse org create "$org" --base-url "${GATEHOUSE_BASE_URL:-http://127.0.0.1:8080}" --name "OP load test" --domain example.com \
	--admin-username owner@example.com --admin-email owner@example.com \
	--admin-first-name Load --admin-last-name Owner 2>&1); then
	grep -q "already exists" <<<"$out" || fail "org create: $out"
	echo "organization $org already exists: reusing it"
fi
token=$(gatehouse scim token create --org "$org" --description "scimload logout $(date -u +%FT%TZ)" --expires 1d 2>"$work/token.err") ||
	fail "scim token create: $(cat "$work/token.err")"
gatehouse scim enable --org "$org"

# Instances on one database share the secret key (the signing key is
# sealed with it). The SCIM rate limit is lifted: the run measures the
# server, not the limiter.
export GATEHOUSE_SECRET_KEY=${GATEHOUSE_SECRET_KEY:-$(head -c 32 /dev/urandom | base64 | tr -d '\n')}
bases=()
for i in $(seq "$instances"); do
	log=$logs.$i.log
	GATEHOUSE_SCIM_RATE_LIMIT=-1 "$work/gatehouse" serve --addr 127.0.0.1:0 --db "$dsn" --log-format json >"$log" 2>&1 &
	servers+=($!)
	addr=
	for _ in $(seq 600); do
		addr=$(sed -n 's/.*"msg":"gatehouse listening".*"addr":"\([^"]*\)".*/\1/p' "$log" | head -n 1)
		[[ -n $addr ]] && break
		kill -0 "${servers[-1]}" 2>/dev/null || fail "gatehouse serve $i exited"
		sleep 0.1
	done
	[[ -n $addr ]] || fail "gatehouse $i did not start listening within 60s"
	for _ in $(seq 100); do
		curl -fsS --noproxy '*' -o /dev/null "http://$addr/readyz" 2>/dev/null && break
		sleep 0.1
	done
	curl -fsS --noproxy '*' -o /dev/null "http://$addr/readyz" || fail "gatehouse on $addr is not ready"
	echo "== gatehouse $i on http://$addr (pid ${servers[-1]})"
	bases+=("http://$addr")
done

status=0
if [[ ,$parts, == *,op,* ]]; then
	args=(op --base "${bases[0]}" --pid "${servers[0]}" --db "$dsn" --org "$org" --rounds "${ROUNDS:-3}" --duration "${DURATION:-5s}"
		--concurrency "${CONCURRENCY:-16}" --codes "${CODES:-3000}")
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
