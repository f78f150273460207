#!/usr/bin/env bash
# Installs the Debian packages that the end-to-end tests run for real (MariaDB, Galera,
# mariadb-backup, socat, prometheus-mysqld-exporter) and shellcheck, then makes sure no system
# MariaDB or exporter keeps running.
# Idempotent: when everything is present it only checks.
set -euo pipefail

packages=(mariadb-server mariadb-client galera-4 mariadb-backup socat rsync shellcheck iproute2 util-linux nftables procps zstd xz-utils rclone prometheus-mysqld-exporter)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "host-setup: missing Debian packages: ${missing[*]}; run as root or install them with apt-get" >&2
    exit 1
  fi
  echo "host-setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# A package install may start the system service (Debian's pid file below); the tests run their
# own servers, which use other pid files and must never be touched here.
pidfile=/run/mysqld/mysqld.pid
if [[ -s $pidfile ]] && kill -0 "$(<"$pidfile")" 2>/dev/null; then
  echo "host-setup: stopping the system MariaDB service (pid $(<"$pidfile"))"
  service mariadb stop >/dev/null 2>&1 || kill "$(<"$pidfile")"
fi

# The exporter package enables a service that would hold port 9104 on this machine: the tests run
# their own exporters, inside pods or on other ports.
if [[ -e /etc/init.d/prometheus-mysqld-exporter ]]; then
  if [[ $(id -u) -eq 0 ]]; then
    if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
      systemctl disable --now prometheus-mysqld-exporter >/dev/null 2>&1 || true
    else
      update-rc.d prometheus-mysqld-exporter disable >/dev/null 2>&1 || true
      service prometheus-mysqld-exporter stop >/dev/null 2>&1 || true
      # without systemd running, the package's enablement symlink would start it at the next boot
      rm -f /etc/systemd/system/multi-user.target.wants/prometheus-mysqld-exporter.service
    fi
  fi
  if pgrep -u prometheus -x prometheus-mysq >/dev/null 2>&1; then
    echo "host-setup: the system prometheus-mysqld-exporter service still runs; stop it (it holds port 9104)" >&2
    exit 1
  fi
fi
exit 0
