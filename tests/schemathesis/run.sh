#!/usr/bin/env bash
# Hostile input against the local stack: schemathesis generates requests
# from docs/openapi.json (valid and invalid ones) for every route, and
# checks that none gets a 5xx and that every answer matches the
# description. Needs `pip install schemathesis`.
#
# Starts `cargo xtask dev` (the functions under `cargo lambda watch` on a
# private database in .devdb), signs in as a guest, and runs schemathesis
# with that guest's token. Arguments go to `schemathesis run`, after ours
# (`--max-examples 50`, say). Exits with schemathesis's status.
set -euo pipefail
cd "$(dirname "$0")/../.."

base=http://localhost:9000
log=target/schemathesis-dev.log
mkdir -p target
# A private database, whatever this machine has running.
unset POSTGRES_URL DATABASE_URL

setsid cargo xtask dev >"$log" 2>&1 &
dev=$!
stop() {
    # cargo xtask dev stops its database and watcher on SIGTERM.
    kill -TERM "$dev" 2>/dev/null || true
    wait "$dev" 2>/dev/null || true
}
trap stop EXIT

echo "cargo xtask dev is logging to $log"

# Each function is built on its first request: ask each route once, until
# it answers (any status but a gateway's 5xx), so that schemathesis's
# requests do not time out on a build.
warm() {
    local method=$1 path=$2 deadline=$((SECONDS + 600)) status
    while :; do
        if ! kill -0 "$dev" 2>/dev/null; then
            echo "cargo xtask dev stopped:" >&2
            cat "$log" >&2
            exit 1
        fi
        status=$(curl -s -o /dev/null -w '%{http_code}' -X "$method" --max-time 300 "$base$path" || true)
        case $status in
            2?? | 4??) return ;;
        esac
        if ((SECONDS > deadline)); then
            echo "$method $path did not answer (last status: $status):" >&2
            cat "$log" >&2
            exit 1
        fi
        sleep 1
    done
}
warm POST /api/auth/guest
for route in "GET /api/history" "GET /api/vote" "GET /api/document" \
    "GET /api/suggestions" "DELETE /api/chat"; do
    warm $route
done

token=$(curl -sf -X POST "$base/api/auth/guest" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')

# hooks.py leaves out generated bodies that are not UTF-8: the local
# emulator answers them with a 500 of its own (see there).
# Do not edit files under the workspace during a run: the watcher restarts
# every function on a change, and requests in flight then time out. For the
# same reason schemathesis keeps no example database (Hypothesis would write
# it to .hypothesis/ here, as it runs).
export SCHEMATHESIS_HOOKS=hooks
export PYTHONPATH="$PWD/tests/schemathesis${PYTHONPATH:+:$PYTHONPATH}"
schemathesis run docs/openapi.json \
    --url "$base" \
    --header "Authorization: Bearer $token" \
    --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
    --max-examples 20 \
    --request-timeout 30 \
    --seed 1 \
    --generation-database none \
    "$@"
