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

# Every source the build downloads is checked against a pinned sha256
# before it is unpacked. The RTMP module comes from Debian's archive (its
# 1.2.2 release, repacked without the non-free files), whose signed
# Sources index gives the checksum; GitHub's archive tarballs carry no
# checksum of their own. nginx comes from nginx.org, and its source must
# be the exact version of the distribution's nginx binary for the module
# to load: each version's checksum is Debian's for the same upstream
# tarball (bookworm, trixie and sid ship nginx.org's release unchanged).
RTMP_MODULE_URL=https://deb.debian.org/debian/pool/main/libn/libnginx-mod-rtmp/libnginx-mod-rtmp_1.2.2+dfsg.orig.tar.xz
RTMP_MODULE_SHA256=6531e5ed75b01dfe786e08e0eb8ffd664b6f271f3e57223fe59dba965fcefd84
RTMP_MODULE_DIR=nginx-rtmp-module-1.2.2

# nginx_sha256 VERSION prints the pinned sha256 of nginx-VERSION.tar.gz.
nginx_sha256() {
	case "$1" in
	1.22.1) echo 9ebb333a9e82b952acd3e2b4aeb1d4ff6406f72491bab6cd9fe69f0dea737f31 ;;
	1.26.3) echo 69ee2b237744036e61d24b836668aad3040dda461fe6f570f1787eab570c75aa ;;
	1.30.6) echo 3cf46f5ed7504d460125866b7bea99fb357f31d887e2e63b35503310e9b8b6c8 ;;
	*)
		echo "nginx $1 (the distribution's) has no pinned source checksum: add the sha256 of nginx-$1.tar.gz to nginx_sha256 in infra/media/install-nginx-rtmp.sh" >&2
		return 1
		;;
	esac
}

# fetch_pinned URL SHA256 FILE downloads URL to FILE and fails, saying
# what it got, unless the file's sha256 is the pinned one.
fetch_pinned() {
	curl -fsSL -o "$3" "$1"
	local got
	got=$(sha256sum "$3" | cut -d' ' -f1)
	if [ "$got" != "$2" ]; then
		echo "download $1 has sha256 $got, pinned $2: the source changed, refusing to build from it" >&2
		rm -f "$3"
		return 1
	fi
}

rpm -q nginx >/dev/null 2>&1 || dnf install -y -q nginx
if [ ! -f "$MODULE" ]; then
	# Amazon Linux 2023 ships nginx without the RTMP module: build it as a
	# dynamic module against the exact installed nginx version.
	dnf install -y -q gcc make pcre2-devel openssl-devel zlib-devel tar gzip xz
	version=$(nginx -v 2>&1 | sed -n 's|.*nginx/\([0-9.]*\).*|\1|p')
	nginx_sum=$(nginx_sha256 "$version")
	build=$(mktemp -d)
	trap 'rm -rf "$build"' EXIT
	fetch_pinned "https://nginx.org/download/nginx-${version}.tar.gz" "$nginx_sum" "$build/nginx.tar.gz"
	fetch_pinned "$RTMP_MODULE_URL" "$RTMP_MODULE_SHA256" "$build/rtmp.tar.xz"
	tar -xzf "$build/nginx.tar.gz" -C "$build"
	tar -xJf "$build/rtmp.tar.xz" -C "$build"
	(
		cd "$build/nginx-${version}"
		./configure --with-compat --add-dynamic-module="$build/$RTMP_MODULE_DIR" >/dev/null
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
