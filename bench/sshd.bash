# A private OpenSSH server on 127.0.0.1 for the benchmarks, as
# tests/support/sshd.rs makes one for the tests: its own host key, port and
# authorized key, in a directory of its own. Sourced by bench/run.bash.
#
#   sshd_start DIR     start it; sets SSHD_PORT, SSHD_LOG and SSH_CMD (the
#                      ssh_command value, also usable as "$SSH_CMD SCRIPT")
#   sshd_logins        "Accepted publickey" lines in its log so far
#   sshd_stop          stop it (only the sshd this file started)

SSHD_BIN=/usr/sbin/sshd
SSHD_PID=
SSHD_DIR=

_sshd_free_port() {
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

_sshd_penalties_option() {
  # OpenSSH >= 9.8 would penalise 127.0.0.1 after dropped connections.
  local v
  v=$("$SSHD_BIN" -V 2>&1 | sed -n 's/.*OpenSSH_\([0-9]*\)\.\([0-9]*\).*/\1 \2/p' | head -n1)
  set -- $v
  if [ "${1:-0}" -gt 9 ] || { [ "${1:-0}" -eq 9 ] && [ "${2:-0}" -ge 8 ]; }; then
    echo "PerSourcePenalties no"
  fi
}

sshd_start() {
  SSHD_DIR=$1
  [ -x "$SSHD_BIN" ] || { echo "bench: $SSHD_BIN not found (apt-get install openssh-server)" >&2; return 1; }
  mkdir -p "$SSHD_DIR" /run/sshd && chmod 755 /run/sshd
  ssh-keygen -q -N '' -t ed25519 -C bench-host -f "$SSHD_DIR/host_ed25519" </dev/null
  ssh-keygen -q -N '' -t ed25519 -C bench-client -f "$SSHD_DIR/client_ed25519" </dev/null
  cp "$SSHD_DIR/client_ed25519.pub" "$SSHD_DIR/authorized_keys"
  SSHD_LOG=$SSHD_DIR/sshd.log
  local attempt
  for attempt in 1 2 3 4 5; do
    SSHD_PORT=$(_sshd_free_port) || { echo "bench: no free port for sshd" >&2; return 1; }
    cat > "$SSHD_DIR/sshd_config" <<CONF
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $SSHD_DIR/host_ed25519
AuthorizedKeysFile $SSHD_DIR/authorized_keys
PidFile $SSHD_DIR/sshd.pid
PermitRootLogin yes
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
PrintMotd no
LogLevel VERBOSE
AcceptEnv none
MaxStartups 200
MaxSessions 200
$(_sshd_penalties_option)
CONF
    rm -f "$SSHD_LOG" "$SSHD_DIR/sshd.pid"
    if ! "$SSHD_BIN" -f "$SSHD_DIR/sshd_config" -E "$SSHD_LOG"; then
      continue
    fi
    SSH_CMD="ssh -F /dev/null -p $SSHD_PORT -i $SSHD_DIR/client_ed25519 -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes -o ConnectTimeout=10 root@127.0.0.1"
    local i
    for i in $(seq 1 200); do
      [ -s "$SSHD_DIR/sshd.pid" ] && SSHD_PID=$(cat "$SSHD_DIR/sshd.pid")
      if [ -n "$SSHD_PID" ] && $SSH_CMD true </dev/null 2>/dev/null; then
        return 0
      fi
      if [ -n "$SSHD_PID" ] && ! kill -0 "$SSHD_PID" 2>/dev/null; then
        break
      fi
      sleep 0.1
    done
    sshd_stop
  done
  echo "bench: sshd did not start; its log:" >&2
  cat "$SSHD_LOG" >&2 2>/dev/null
  return 1
}

sshd_logins() {
  grep -c 'Accepted publickey' "$SSHD_LOG" 2>/dev/null || true
}

sshd_stop() {
  if [ -n "$SSHD_PID" ]; then
    kill "$SSHD_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$SSHD_PID" 2>/dev/null || break
      sleep 0.1
    done
    SSHD_PID=
  fi
}
