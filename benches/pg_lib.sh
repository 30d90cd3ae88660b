# Sourced by benches/pg_*.sh: a throwaway PostgreSQL server on loopback port $PG_PORT
# (fsync on), from the newest /usr/lib/postgresql/*/bin, removed on exit; `psql SQL [DB]`.
PGB=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
D=$(mktemp -d)
# initdb refuses root: the cluster then belongs to the postgres user.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$D"
as_pg "$PGB/initdb" -D "$D/data" -U semel -A trust >/dev/null
as_pg "$PGB/pg_ctl" -D "$D/data" -l "$D/log" \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $D -c max_connections=200" -w start >/dev/null
trap 'as_pg "$PGB/pg_ctl" -D "$D/data" -m immediate -w stop >/dev/null 2>&1; rm -rf "$D"' EXIT
psql() { "$PGB/psql" -h 127.0.0.1 -p "$PG_PORT" -U semel -d "${2:-postgres}" -qAt -c "$1"; }
