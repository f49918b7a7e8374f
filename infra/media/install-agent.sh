#!/usr/bin/env bash
# Installs the mediascale node agent on a media node and runs it as the
# systemd unit mediascale-agent. Run by SSM Run Command (the second step of
# document mediascale-<env>-media-rtmp) as root after the media server is
# up; idempotent, so a retried or repeated deploy converges. Parameters
# arrive as environment variables:
#   AGENT_URL        s3:// URL of the agent binary, an asset of the stack
#   AWS_REGION       the node's region
#   HEALTH_PORT      port of the media server's /stat page
#   NODE, POOL       the node's id and pool
#   TABLE            the node table the agent writes its heartbeat to
#   INTERVAL         seconds between two reports
#   HIGH_RESOLUTION  true to store metrics at one-second resolution
set -euo pipefail

: "${AGENT_URL:?}" "${AWS_REGION:?}" "${HEALTH_PORT:?}" "${NODE:?}" "${POOL:?}" "${TABLE:?}" "${INTERVAL:?}" "${HIGH_RESOLUTION:?}"
[[ "$AGENT_URL" =~ ^s3://[a-z0-9.-]+/[A-Za-z0-9._/-]+$ ]] || { echo "AGENT_URL '$AGENT_URL' is not an s3:// object URL" >&2; exit 2; }
[[ "$INTERVAL" =~ ^[0-9]+$ && "$HEALTH_PORT" =~ ^[0-9]+$ ]] || { echo "INTERVAL and HEALTH_PORT must be numbers" >&2; exit 2; }

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
aws s3 cp --only-show-errors --region "$AWS_REGION" "$AGENT_URL" "$tmp"
install -m 0755 "$tmp" /usr/local/bin/mediascale-agent

install -d -m 0755 /etc/mediascale
cat >/etc/mediascale/agent.env <<ENV
AWS_REGION=$AWS_REGION
MEDIASCALE_NODE=$NODE
MEDIASCALE_POOL=$POOL
MEDIASCALE_TABLE=$TABLE
MEDIASCALE_INTERVAL=${INTERVAL}s
MEDIASCALE_HIGH_RESOLUTION=$HIGH_RESOLUTION
MEDIASCALE_HEALTH_PORT=$HEALTH_PORT
ENV

cat >/etc/systemd/system/mediascale-agent.service <<'UNIT'
[Unit]
Description=mediascale node agent: load metrics and heartbeat
After=network-online.target nginx.service
Wants=network-online.target

[Service]
EnvironmentFile=/etc/mediascale/agent.env
ExecStart=/usr/local/bin/mediascale-agent
Restart=always
RestartSec=5
DynamicUser=yes
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
UNIT

systemctl daemon-reload
systemctl enable mediascale-agent
systemctl restart mediascale-agent
systemctl is-active --quiet mediascale-agent || { journalctl -u mediascale-agent --no-pager -n 30 >&2; exit 1; }
echo "mediascale-agent reports $POOL/$NODE every ${INTERVAL}s"
