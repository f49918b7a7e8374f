#!/usr/bin/env bash
# Installs and configures nginx with the RTMP module on Amazon Linux 2023,
# the media server of an RTMP pool. Run by SSM Run Command (document
# mediascale-<env>-media-rtmp) as root; idempotent, so a retried deploy
# converges instead of failing. Parameters arrive as environment variables:
#   RTMP_PORT         RTMP listen port
#   HEALTH_PORT       port of /healthz and /stat (RTMP statistics)
#   MAX_CONNECTIONS   connection cap of the worker
# With MEDIASCALE_BAKE=1 (the media image's build, EC2 Image Builder) it
# installs nginx and builds the module, and stops there. On a node launched
# from that image nothing is downloaded or compiled: the deploy writes the
# configuration and reloads nginx.
set -euo pipefail

MODULE_DIR=/usr/lib64/nginx/modules
MODULE=$MODULE_DIR/ngx_rtmp_module.so
RTMP_MODULE_VERSION=v1.2.2

rpm -q nginx >/dev/null 2>&1 || dnf install -y -q nginx
if [ ! -f "$MODULE" ]; then
	# Amazon Linux 2023 ships nginx without the RTMP module: build it as a
	# dynamic module against the exact installed nginx version.
	dnf install -y -q gcc make pcre2-devel openssl-devel zlib-devel tar gzip
	version=$(nginx -v 2>&1 | sed -n 's|.*nginx/\([0-9.]*\).*|\1|p')
	build=$(mktemp -d)
	trap 'rm -rf "$build"' EXIT
	curl -fsSL "https://nginx.org/download/nginx-${version}.tar.gz" | tar -xz -C "$build"
	curl -fsSL "https://github.com/arut/nginx-rtmp-module/archive/refs/tags/${RTMP_MODULE_VERSION}.tar.gz" | tar -xz -C "$build"
	(
		cd "$build/nginx-${version}"
		./configure --with-compat --add-dynamic-module="$build/nginx-rtmp-module-${RTMP_MODULE_VERSION#v}" >/dev/null
		make -s modules
	)
	install -m 0644 "$build/nginx-${version}/objs/ngx_rtmp_module.so" "$MODULE"
fi
if [ "${MEDIASCALE_BAKE:-}" = 1 ]; then
	exit 0
fi

: "${RTMP_PORT:?}" "${HEALTH_PORT:?}" "${MAX_CONNECTIONS:?}"
for v in "$RTMP_PORT" "$HEALTH_PORT" "$MAX_CONNECTIONS"; do
	[[ "$v" =~ ^[0-9]+$ ]] || { echo "parameter '$v' is not a number" >&2; exit 2; }
done

cat >/etc/nginx/nginx.conf <<CONF
load_module $MODULE;
user nginx;
worker_processes auto;
pid /run/nginx.pid;
error_log /var/log/nginx/error.log warn;
events { worker_connections $MAX_CONNECTIONS; }
rtmp {
    server {
        listen $RTMP_PORT;
        chunk_size 4096;
        application live {
            live on;
            record off;
        }
    }
}
http {
    access_log /var/log/nginx/access.log;
    server {
        listen $HEALTH_PORT;
        location = /healthz { return 200 "ok\n"; }
        location /stat { rtmp_stat all; }
        location /control { rtmp_control all; allow 127.0.0.1; deny all; }
    }
}
CONF

nginx -t
systemctl enable nginx
# A reload keeps the sessions a running node already has (old workers
# serve them until they end); a first deploy starts nginx.
systemctl reload-or-restart nginx

# The node is deployed only when it answers on both ports.
for _ in $(seq 1 30); do
	if curl -fsS "http://127.0.0.1:${HEALTH_PORT}/healthz" >/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/${RTMP_PORT}") 2>/dev/null; then
		echo "nginx-rtmp is serving RTMP on ${RTMP_PORT} and health on ${HEALTH_PORT}"
		exit 0
	fi
	sleep 1
done
echo "nginx-rtmp did not come up" >&2
journalctl -u nginx --no-pager -n 50 >&2 || true
exit 1
