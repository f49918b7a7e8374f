#!/usr/bin/env bash
# Makes a node's nginx-rtmp refuse new sessions while it keeps the ones it
# has: the workflow has already taken the node's traffic weight to zero;
# this closes the door for clients that still resolve to it. Run by SSM Run
# Command (document mediascale-<env>-media-rtmp-drain) as root.
#
# nginx reloads gracefully: workers of the old configuration keep serving
# their sessions until those end, new workers deny publish and play. The
# workflow polls /stat until the sessions are gone or the drain timeout
# passes, then closes the rest through /control.
set -euo pipefail

conf=/etc/nginx/nginx.conf
[ -f "$conf" ] || { echo "no $conf: is this a mediascale media node?" >&2; exit 1; }
if ! grep -q 'deny publish all;' "$conf"; then
	sed -i 's|^\( *\)live on;|\1live on;\n\1deny publish all;\n\1deny play all;|' "$conf"
fi
# Old workers must outlive the drain timeout: never shut them down early.
if ! grep -q 'worker_shutdown_timeout' "$conf"; then
	sed -i 's|^worker_processes auto;|worker_processes auto;\nworker_shutdown_timeout 24h;|' "$conf"
fi
nginx -t
systemctl reload nginx
echo "nginx-rtmp refuses new sessions; existing sessions continue"
