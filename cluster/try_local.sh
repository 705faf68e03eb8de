#!/usr/bin/env bash
# `ray up`, `ray submit` and `ray down` of cluster/local.yaml for real, on this machine: an SSH server on
# 127.0.0.1 (Debian's openssh-server) is the head, a user made for the try logs in with a key made for
# it. The YAML runs as shipped except for what names the machines: head_ip 127.0.0.1 and no workers, the
# user and key, and the shared storage path (a directory here). Then the smoke study is submitted with
# no flags but --smoke: Ray address, storage and tracking server come from the cluster.
#
#   sudo cluster/try_local.sh        # from the repository root, after `make install`; needs root (sshd, useradd)
#
# It leaves the try's user and its home (the venv the setup commands made) for a faster next run.
set -euo pipefail
cd "$(dirname "$0")/.."
RAY=$PWD/.venv/bin/ray
USER_NAME=anomclr-try
WORK=$(mktemp -d /tmp/anomclr-try.XXXX)
chmod 755 "$WORK"

command -v rsync >/dev/null && test -x /usr/sbin/sshd || apt-get install -y -q openssh-server rsync
id "$USER_NAME" >/dev/null 2>&1 || useradd -m -s /bin/bash "$USER_NAME"
ssh-keygen -q -t ed25519 -N '' -f "$WORK/key"
install -d -m 700 -o "$USER_NAME" -g "$USER_NAME" "/home/$USER_NAME/.ssh"
install -m 600 -o "$USER_NAME" -g "$USER_NAME" "$WORK/key.pub" "/home/$USER_NAME/.ssh/authorized_keys"
mkdir -p /run/sshd "$WORK/shared"
chown "$USER_NAME" "$WORK/shared"
trap 'kill "$(cat "$WORK/sshd.pid" 2>/dev/null)" 2>/dev/null || true' EXIT
/usr/sbin/sshd -o ListenAddress=127.0.0.1 -o PasswordAuthentication=no -o PidFile="$WORK/sshd.pid" -E "$WORK/sshd.log"

.venv/bin/python - "$WORK" "$USER_NAME" <<'PY'
import sys
from pathlib import Path

import yaml

work, user = Path(sys.argv[1]), sys.argv[2]
cfg = yaml.safe_load(Path("cluster/local.yaml").read_text())
cfg["provider"].update(head_ip="127.0.0.1", worker_ips=[])
cfg.update(min_workers=0, max_workers=0)
cfg["auth"] = {"ssh_user": user, "ssh_private_key": str(work / "key")}
cfg["head_setup_commands"] = [c.replace("/shared/anomclr", str(work / "shared")) for c in cfg["head_setup_commands"]]
(work / "cluster.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
PY
echo "== cluster file: cluster/local.yaml with these lines changed"
diff <(.venv/bin/python -c "import yaml,sys; print(yaml.safe_dump(yaml.safe_load(open('cluster/local.yaml')), sort_keys=False))") \
  "$WORK/cluster.yaml" || true

trap '"$RAY" down -y "$WORK/cluster.yaml" >/dev/null 2>&1; kill "$(cat "$WORK/sshd.pid")" 2>/dev/null || true' EXIT
set -x
"$RAY" up -y --no-config-cache "$WORK/cluster.yaml"
"$RAY" submit "$WORK/cluster.yaml" studies/ablation_augmentations.py --smoke
"$RAY" exec "$WORK/cluster.yaml" 'echo "$MLFLOW_TRACKING_URI $ANOMCLR_STORAGE"; ls "$ANOMCLR_STORAGE" "$ANOMCLR_STORAGE/mlartifacts"/*; ls ~/reports/*'
"$RAY" down -y "$WORK/cluster.yaml"
# `ray down` stops Ray; the MLflow server of an on-prem head keeps serving the runs until stopped
su "$USER_NAME" -c 'pkill -f "mlflow server --host .* --port 5000 "' || true
