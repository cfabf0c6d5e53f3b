#!/usr/bin/env bash
# Installs what `make test` needs where it is missing: mariadbd and
# mariadb-install-db (mariadb-server), the mariadb CLI (mariadb-client) and
# PyMySQL for Debian's python3 (python3-pymysql), and zsh (the completion
# script's test runs it). Then fetches Go modules.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }
have mariadbd || need+=(mariadb-server)
have mariadb-install-db || need+=(mariadb-server)
have mariadb || need+=(mariadb-client)
/usr/bin/python3 -c 'import pymysql' >/dev/null 2>&1 || need+=(python3-pymysql)
have zsh || need+=(zsh)

if [ ${#need[@]} -gt 0 ]; then
  # shellcheck disable=SC2207
  pkgs=($(printf '%s\n' "${need[@]}" | sort -u))
  echo "ensure-deps: installing ${pkgs[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  # The package's own service must not start: tests run private servers.
  $sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi
go mod download
