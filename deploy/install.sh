#!/usr/bin/env bash
# Installs Email-Engine as a service: a dedicated system user, the data directory (0700),
# the configuration directory with an environment file to fill in, the binary, and the
# systemd units (one node: email-engine.service; several on PostgreSQL:
# email-engine-api.service and email-engine-worker.service). Safe to run again: what exists
# is kept (the environment file is never overwritten), modes and owners are set again.
#
#   sudo deploy/install.sh [--binary target/release/email-engine] [--enable single|split]
#
# --root DIR installs under DIR instead of / (for packaging and tests); --no-user skips
# creating the user (then files stay owned by the caller); --no-systemctl skips
# `systemctl daemon-reload` and enabling.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=target/release/email-engine
root=
make_user=1
systemctl=1
enable=
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary=$2; shift 2 ;;
    --root) root=${2%/}; shift 2 ;;
    --no-user) make_user=0; shift ;;
    --no-systemctl) systemctl=0; shift ;;
    --enable) enable=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$enable" in ""|single|split) ;; *) echo "install.sh: --enable takes single or split" >&2; exit 2 ;; esac
if [ ! -x "$binary" ]; then
  echo "install.sh: no binary at $binary (cargo build --release first, or pass --binary)" >&2
  exit 1
fi

user=email-engine
owner=$(id -un)
group=$(id -gn)
if [ "$make_user" = 1 ]; then
  if ! getent group "$user" >/dev/null; then groupadd --system "$user"; fi
  if ! id -u "$user" >/dev/null 2>&1; then
    useradd --system --gid "$user" --home-dir /var/lib/email-engine --no-create-home \
      --shell /usr/sbin/nologin --comment "Email-Engine" "$user"
  fi
  owner=$user
  group=$user
fi

install -d -m 0755 "$root/usr/local/bin" "$root/etc/systemd/system" "$root/usr/local/share/doc/email-engine"
install -d -m 0700 -o "$owner" -g "$group" "$root/var/lib/email-engine"
chmod 0700 "$root/var/lib/email-engine"
install -d -m 0750 -o root -g "$group" "$root/etc/email-engine" 2>/dev/null \
  || install -d -m 0750 "$root/etc/email-engine"

install -m 0755 "$binary" "$root/usr/local/bin/email-engine"
for unit in email-engine.service email-engine-api.service email-engine-worker.service; do
  install -m 0644 "deploy/systemd/$unit" "$root/etc/systemd/system/$unit"
done
install -m 0644 README.md "$root/usr/local/share/doc/email-engine/README.md"

env_file="$root/etc/email-engine/email-engine.env"
if [ ! -e "$env_file" ]; then
  umask 027
  cat > "$env_file" <<'ENV'
# Email-Engine's environment (see the README's Configuration table). Kept on re-install.
# The public address of the tracking host (links and pixels in messages):
#EE_PUBLIC_URL=https://t.example.com
# PostgreSQL (required for the api/worker split; SQLite in /var/lib/email-engine otherwise):
#DATABASE_URL=postgres://email_engine@127.0.0.1:5432/email_engine
# The first admin's password (else one is printed once in the journal):
#EE_ADMIN_PASSWORD=
ENV
fi
chown "root:$group" "$env_file" 2>/dev/null || true
chmod 0640 "$env_file"

if [ "$systemctl" = 1 ] && command -v systemctl >/dev/null 2>&1; then
  systemctl daemon-reload
  case "$enable" in
    single) systemctl enable --now email-engine.service ;;
    split) systemctl enable --now email-engine-api.service email-engine-worker.service ;;
  esac
fi
echo "Installed: $root/usr/local/bin/email-engine, units in $root/etc/systemd/system, data in $root/var/lib/email-engine, settings in $env_file"
