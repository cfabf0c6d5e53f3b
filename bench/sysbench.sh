#!/usr/bin/env bash
# Throughput of abortscope against a direct connection and HAProxy (mode tcp)
# on a private MariaDB: sysbench oltp_point_select, the measure in the
# brief ("share of a direct connection").
#
#   bash bench/sysbench.sh                # 3 rounds of 10 s per target, 8 threads
#   THREADS=16 TIME=20 ROUNDS=5 bash bench/sysbench.sh
#
# Needs mariadb-server, sysbench and haproxy (apt-get install -y ...). Uses
# loopback only and stops everything it started.
set -euo pipefail
THREADS=${THREADS:-8}
TIME=${TIME:-10}
ROUNDS=${ROUNDS:-3}
TABLE_SIZE=${TABLE_SIZE:-10000}
cd "$(dirname "$0")/.."

for b in mariadbd mariadb-install-db sysbench haproxy; do
  command -v "$b" >/dev/null || [ -x "/usr/sbin/$b" ] || { echo "missing $b: apt-get install -y mariadb-server sysbench haproxy" >&2; exit 1; }
done
export PATH="$PATH:/usr/sbin"

work=$(mktemp -d /tmp/abortscope-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
DB_PORT=$(free_port); AS_PORT=$(free_port); HA_PORT=$(free_port)

user=()
[ "$(id -u)" -eq 0 ] && user=(--user=root)
mariadb-install-db --no-defaults --datadir="$work/data" --auth-root-authentication-method=normal \
  --skip-test-db --force "${user[@]}" >"$work/install.log" 2>&1
mariadbd --no-defaults --datadir="$work/data" --port="$DB_PORT" --bind-address=127.0.0.1 \
  --socket="$work/sock" --log-error="$work/err.log" --max-connections=500 "${user[@]}" &
pids+=($!)
for _ in $(seq 100); do mariadb -h127.0.0.1 -P"$DB_PORT" -uroot -e 'select 1' >/dev/null 2>&1 && break; sleep 0.1; done

go build -o "$work/abortscope" ./cmd/abortscope
"$work/abortscope" serve --listen "127.0.0.1:$AS_PORT" --upstream "127.0.0.1:$DB_PORT" \
  --events "$work/events.jsonl" --admin "" --log-level warn &
pids+=($!)

cat >"$work/haproxy.cfg" <<CFG
global
  maxconn 1000
defaults
  mode tcp
  timeout connect 5s
  timeout client 1h
  timeout server 1h
listen mariadb
  bind 127.0.0.1:$HA_PORT
  server db 127.0.0.1:$DB_PORT
CFG
haproxy -f "$work/haproxy.cfg" -db &
pids+=($!)
sleep 0.5

mariadb -h127.0.0.1 -P"$DB_PORT" -uroot -e 'create database sbtest'
sb=(sysbench oltp_point_select --db-driver=mysql --mysql-host=127.0.0.1 --mysql-user=root
    --mysql-db=sbtest --tables=1 --table-size="$TABLE_SIZE" --threads="$THREADS" --time="$TIME"
    --report-interval=0 --db-ps-mode=disable)
"${sb[@]}" --mysql-port="$DB_PORT" prepare >/dev/null

tps() { "${sb[@]}" --mysql-port="$1" run | awk '/transactions:/ { gsub(/\(/,"",$3); print $3 }'; }

declare -A sum
for r in $(seq "$ROUNDS"); do
  for t in direct:$DB_PORT abortscope:$AS_PORT haproxy:$HA_PORT; do
    name=${t%%:*}; port=${t##*:}
    v=$(tps "$port")
    printf 'round %d  %-10s %10.0f tps\n' "$r" "$name" "$v"
    sum[$name]=$(awk -v a="${sum[$name]:-0}" -v b="$v" 'BEGIN { print a + b }')
  done
done
d=${sum[direct]}
echo
echo "oltp_point_select, $THREADS threads, $ROUNDS x ${TIME}s, $(nproc) cores"
for name in direct abortscope haproxy; do
  awk -v n="$name" -v s="${sum[$name]}" -v d="$d" -v r="$ROUNDS" \
    'BEGIN { printf "%-10s %10.0f tps  %.2f of direct\n", n, s / r, s / d }'
done
echo "abortscope events written: $(wc -l <"$work/events.jsonl")"
