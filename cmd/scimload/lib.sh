# Sourced by load.sh and op.sh (bash), which define $repo, $work, $dsn
# and fail, and stop $server.

# build_tools builds gatehouse and scimload into $work and defines the
# function gatehouse (the CLI on $dsn).
build_tools() {
	echo "== building gatehouse and scimload ($(go version | cut -d' ' -f3), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg))"
	(cd "$repo" && go build -o "$work/gatehouse" ./cmd/gatehouse && go build -o "$work/scimload" ./cmd/scimload)
	gatehouse() { "$work/gatehouse" "$@" --db "$dsn"; }
}

# describe_db sets $db to what the figures are of: PostgreSQL (not the
# URL: it may hold a password), or SQLite and the file system under it
# (on tmpfs an fsync costs nothing, which flatters SQLite's figures).
describe_db() {
	if [[ $dsn == postgres://* || $dsn == postgresql://* ]]; then
		db="PostgreSQL"
	else
		local path=${dsn#sqlite:}
		db="SQLite on $(stat -f -c %T "$(dirname "${path#//}")" 2>/dev/null || echo "a new folder")"
	fi
}

# create_org SLUG NAME creates the organization, or reuses it. The base
# URL is only that of the owner's activation link, never opened.
create_org() {
	local out
	if ! out=$(gatehouse org create "$1" --base-url "${GATEHOUSE_BASE_URL:-http://127.0.0.1:8080}" --name "$2" --domain example.com \
		--admin-username owner@example.com --admin-email owner@example.com \
		--admin-first-name Load --admin-last-name Owner 2>&1); then
		grep -q "already exists" <<<"$out" || fail "org create: $out"
		echo "organization $1 already exists: reusing it"
	fi
}

# serve_gatehouse starts the built gatehouse serve on a free loopback port
# of $dsn, logging to its first argument, waits until it is ready, and
# sets $server (its pid) and $addr. Port 0: the kernel picks the port,
# which gatehouse logs. The per-organization SCIM rate limit is lifted: a
# run measures the server, not the limiter.
serve_gatehouse() {
	local log=$1
	GATEHOUSE_SCIM_RATE_LIMIT=-1 "$work/gatehouse" serve --addr 127.0.0.1:0 --db "$dsn" --log-format json >"$log" 2>&1 &
	server=$!
	addr=
	for _ in $(seq 600); do
		addr=$(sed -n 's/.*"msg":"gatehouse listening".*"addr":"\([^"]*\)".*/\1/p' "$log" | head -n 1)
		[[ -n $addr ]] && break
		kill -0 "$server" 2>/dev/null || fail "gatehouse serve exited"
		sleep 0.1
	done
	[[ -n $addr ]] || fail "gatehouse did not start listening within 60s"
	for _ in $(seq 100); do
		curl -fsS --noproxy '*' -o /dev/null "http://$addr/readyz" 2>/dev/null && break
		sleep 0.1
	done
	curl -fsS --noproxy '*' -o /dev/null "http://$addr/readyz" || fail "gatehouse on $addr is not ready"
}
