#!/usr/bin/env bash
# Starts, stops and reports pcscd without systemd, with vsmartcard's vpcd readers.
#
#   scripts/pcscd.sh start    pcscd --foreground in the background; waits until it is ready
#   scripts/pcscd.sh stop     stops the pcscd this script started (by its PID)
#   scripts/pcscd.sh status   prints "running PID", "running (not ours)" or "stopped"; exit 0 when up
#
# Readers: the stock vpcd entry (ports 35963/35964, "Virtual PCD 00 00/01") and, unless
# KMT_PCSC_EXTRA_READER=0, a second entry with a copied libifdvpcd.so and CHANNELID 36000 (ports
# 36000/36001, "Virtual PCD 2 00 00/01"): entries sharing one .so would share its slot state.
# Readiness is the socket file plus a LISTEN entry for port 0x8C7B in /proc/net/tcp; never probe
# 35963 with a connect: vpcd takes any connection as a card. Only one pcscd runs per machine.
set -euo pipefail

state_dir="${KMT_PCSCD_DIR:-/tmp/kmt-pcscd}"
pid_file="$state_dir/pcscd.pid"
log_file="$state_dir/pcscd.log"
conf_dir="$state_dir/reader.conf.d"
socket_file="/run/pcscd/pcscd.comm"
vpcd_lib="${KMT_VPCD_LIB:-/usr/lib/pcsc/drivers/serial/libifdvpcd.so}"
extra="${KMT_PCSC_EXTRA_READER:-1}"

listening() { # $1 = port as 4 upper-case hex digits
  awk -v p=":$1" 'NR > 1 && substr($2, length($2) - 4) == p && $4 == "0A" { found = 1 } END { exit !found }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

our_pid() {
  [ -f "$pid_file" ] || return 1
  local pid
  pid="$(cat "$pid_file")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "pcscd" ] || return 1
  echo "$pid"
}

any_pcscd() { [ -S "$socket_file" ] && listening 8C7B; }

write_config() {
  rm -rf "$conf_dir"
  mkdir -p "$conf_dir"
  cat >"$conf_dir/vpcd" <<EOF
FRIENDLYNAME "Virtual PCD"
DEVICENAME   /dev/null:0x8C7B
LIBPATH      $vpcd_lib
CHANNELID    0x8C7B
EOF
  if [ "$extra" = 1 ]; then
    cp "$(readlink -f "$vpcd_lib")" "$state_dir/libifdvpcd-2.so"
    cat >"$conf_dir/vpcd-2" <<EOF
FRIENDLYNAME "Virtual PCD 2"
DEVICENAME   /dev/null:0x8CA0
LIBPATH      $state_dir/libifdvpcd-2.so
CHANNELID    0x8CA0
EOF
  fi
}

start() {
  if pid="$(our_pid)"; then echo "pcscd already running (pid $pid)"; return 0; fi
  if any_pcscd; then echo "pcscd already running (not started by this script)"; return 0; fi
  command -v pcscd >/dev/null || { echo "pcscd not installed: apt-get install pcscd vsmartcard-vpcd" >&2; return 1; }
  [ -e "$vpcd_lib" ] || { echo "vpcd driver missing ($vpcd_lib): apt-get install vsmartcard-vpcd" >&2; return 1; }
  mkdir -p "$state_dir"
  write_config
  # A stale socket from a killed pcscd would make the readiness check pass too early.
  [ -S "$socket_file" ] && ! pgrep -x pcscd >/dev/null && rm -f "$socket_file"
  # No -x/--auto-exit: pcscd would quit after 60 s without a PC/SC client even with a card connected.
  pcscd --foreground --config "$conf_dir" >"$log_file" 2>&1 &
  local pid=$!
  echo "$pid" >"$pid_file"
  for _ in $(seq 1 100); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "pcscd exited at start-up; log $log_file:" >&2
      cat "$log_file" >&2
      rm -f "$pid_file"
      return 1
    fi
    if [ -S "$socket_file" ] && listening 8C7B && { [ "$extra" != 1 ] || listening 8CA0; }; then
      echo "pcscd started (pid $pid), readers on ports 35963 35964$([ "$extra" = 1 ] && echo ' 36000 36001')"
      return 0
    fi
    sleep 0.05
  done
  echo "pcscd did not become ready within 5 s; log $log_file:" >&2
  cat "$log_file" >&2
  kill "$pid" 2>/dev/null || true
  rm -f "$pid_file"
  return 1
}

stop() {
  local pid
  if ! pid="$(our_pid)"; then
    rm -f "$pid_file"
    echo "pcscd not running (or not started by this script)"
    return 0
  fi
  kill -TERM "$pid"
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$pid_file"; echo "pcscd stopped (pid $pid)"; return 0; }
    sleep 0.05
  done
  echo "pcscd (pid $pid) ignored SIGTERM for 5 s; sending SIGKILL" >&2
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pid_file"
}

status() {
  local pid
  if pid="$(our_pid)"; then echo "running $pid"; return 0; fi
  if any_pcscd; then echo "running (not ours)"; return 0; fi
  echo "stopped"
  return 3
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
