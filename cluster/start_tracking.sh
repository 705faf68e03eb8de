#!/usr/bin/env bash
# The studies' MLflow tracking server on a Ray cluster head; cluster/*.yaml run it after `ray start --head`.
#
# It listens on two addresses of the head, never on a public one:
#   - the head's private address, $MLFLOW_TRACKING_URI: trials on every node log there (inside the
#     cluster's network; cluster/gpu.yaml's security group opens only SSH to the outside);
#   - 127.0.0.1, for you: `ray attach cluster/<name>.yaml -p 5000` tunnels it to http://localhost:5000.
# Runs are stored in $MLFLOW_BACKEND_STORE (default: SQLite on the head's disk, ~/mlflow.db: copy it with
# `ray rsync-down` before `ray down` of a cloud cluster, or give a database URI); artifacts are proxied
# to $ANOMCLR_STORAGE/mlartifacts, the bucket or shared path the studies keep their state in.
set -euo pipefail
source ~/.anomclr_env  # ANOMCLR_STORAGE and MLFLOW_TRACKING_URI, written by head_setup_commands
private=${MLFLOW_TRACKING_URI#http://}
private=${private%:*}
backend=${MLFLOW_BACKEND_STORE:-sqlite:///$HOME/mlflow.db}
# `ray up` again restarts it: stop the old servers and wait until they are gone (else the health check
# below would be answered by a dying one)
pkill -f "mlflow server --host .* --port 5000 " || true
for _ in $(seq 60); do pgrep -f "mlflow server --host .* --port 5000 " >/dev/null || break; sleep 1; done
for host in $(printf '%s\n' "$private" 127.0.0.1 | sort -u); do
  # the Host headers it answers (MLflow's guard against DNS rebinding): its own addresses only
  nohup mlflow server --host "$host" --port 5000 --backend-store-uri "$backend" \
    --allowed-hosts "$private:5000,127.0.0.1:5000,localhost:5000" \
    --artifacts-destination "$ANOMCLR_STORAGE/mlartifacts" >"$HOME/mlflow-$host.log" 2>&1 &
  # one server at a time: the first creates the store's tables
  python3 -c "
import sys, time, urllib.request
for _ in range(120):
    try:
        urllib.request.urlopen('http://$host:5000/health', timeout=2); sys.exit(0)
    except OSError:
        time.sleep(1)
sys.exit('MLflow server on $host:5000 did not start: see ~/mlflow-$host.log')"
done
echo "MLflow tracking server: $MLFLOW_TRACKING_URI (and 127.0.0.1:5000 on the head), artifacts in $ANOMCLR_STORAGE/mlartifacts"
