#!/usr/bin/env bash
# Describes the machine a results folder was measured on (written as machine.txt by compare.sh).
echo "recorded: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "host: $(hostname)"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "cores: $(nproc)"
echo "memory: $(free -h | awk '/^Mem:/ {print $2}')"
echo "kernel: $(uname -sr)"
echo "os: $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
echo "rustc: $(rustc --version)"
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
echo "postgresql: $("${pg_bin:-/nonexistent}/postgres" --version 2>/dev/null || echo unknown)"
