#!/usr/bin/env bash
# The full set-up on one machine: PostgreSQL, a Redis broker, two Celery workers, the function host
# with two warm workers, and the web app under gunicorn (deploy/gunicorn.conf.py; static files by
# whitenoise from collectstatic), all in the foreground; Ctrl-C stops everything.
#   make stack            (or: bash deploy/stack.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/asktwice}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
export INFERENCE_BACKEND=${INFERENCE_BACKEND:-http}
export INFERENCE_URL=${INFERENCE_URL:-http://127.0.0.1:9000}
PORT=${PORT:-8000}

pg_isready -h 127.0.0.1 -p 5432 -q || pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
redis-cli -u "$REDIS_URL" ping >/dev/null 2>&1 || redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
db=${DATABASE_URL##*/}
psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE \"$db\""

"$PY" manage.py migrate --noinput
"$PY" manage.py collectstatic --noinput -v0
export WHITENOISE_USE_FINDERS=0
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' EXIT INT TERM
"$PY" -m embeddings.host --port 9000 --workers 2 & pids+=($!)
for i in 1 2; do
  "$PY" -m celery -A webapp worker --pool=solo --concurrency=1 -n "worker$i@%h" --loglevel=INFO \
    --without-gossip --without-mingle & pids+=($!)
done
for _ in $(seq 100); do curl -sf http://127.0.0.1:9000/healthz >/dev/null && break; sleep 0.2; done
"$PY" manage.py seed_demo
echo "AskTwice on http://127.0.0.1:$PORT/e/DEMO/ (PostgreSQL, Redis, 2 Celery workers, function host, gunicorn)"
PORT=$PORT "$PY" -m gunicorn -c deploy/gunicorn.conf.py webapp.wsgi & pids+=($!)
wait -n
