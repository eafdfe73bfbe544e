# Shared helpers for the infra/*.sh scripts. Sourced, never run directly.
# The caller has already done `set -euo pipefail`.

INFRA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$INFRA_DIR/.." && pwd)"
# Everything downloaded or generated lives here (git-ignored), so a clone is self-contained.
STATE="$REPO/.infra"
mkdir -p "$STATE"

# die MESSAGE [LOGFILE]: one-line error, then the log tail that usually explains it.
die() {
  echo "ERROR: $1" >&2
  if [[ -n "${2:-}" && -s "$2" ]]; then
    echo "--- last lines of $2 ---" >&2
    tail -n 30 "$2" >&2
  fi
  exit 1
}

now() { date +%s%3N; } # milliseconds

# since START_MS: elapsed time for status lines, e.g. "2.3s".
since() { awk -v d=$(($(now) - $1)) 'BEGIN { printf "%.1fs", d / 1000 }'; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# http_status URL: prints the HTTP status code (000 when nothing answered).
http_status() { curl -s -o /dev/null -m 5 -w '%{http_code}' "$1" || true; }

# proc_running PID: exists and is not a zombie (under a non-reaping init a killed server
# can linger as a zombie, which kill -0 still reports as alive).
proc_running() {
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) && [[ -n $st && $st != Z ]]
}

# pid_alive PIDFILE PATTERN: true if the pid in PIDFILE runs and its command line
# contains PATTERN (guards against a recycled pid after a reboot or SIGKILL).
pid_alive() {
  local pid
  [[ -s $1 ]] || return 1
  read -r pid <"$1"
  proc_running "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2"
}

# spawn PIDFILE LOGFILE CMD...: run CMD in the background in its own session, so the
# service outlives the calling shell and a Ctrl-C there does not reach it.
spawn() {
  local pidfile=$1 log=$2 i
  shift 2
  rm -f "$pidfile"
  echo "=== $(date '+%F %T') starting: $*" >>"$log"
  # bash -c writes its own pid and then execs, so the pid file names the real server
  # process even if setsid had to fork.
  # shellcheck disable=SC2016
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" </dev/null >>"$log" 2>&1 9>&- &
  for i in $(seq 50); do
    [[ -s $pidfile ]] && return 0
    sleep 0.1
  done
  die "could not start $1" "$log"
}

# wait_healthy NAME TIMEOUT PIDFILE PATTERN LOGFILE CHECK...: poll CHECK until it succeeds;
# fail fast if the process dies, and fail with the log tail after TIMEOUT seconds.
wait_healthy() {
  local name=$1 timeout=$2 pidfile=$3 pattern=$4 log=$5 deadline pid
  shift 5
  deadline=$(($(now) + timeout * 1000))
  until "$@"; do
    pid_alive "$pidfile" "$pattern" || die "$name exited during startup" "$log"
    if (($(now) >= deadline)); then
      # A half-started server would only confuse the next start; the log stays for diagnosis.
      read -r pid <"$pidfile"
      kill -KILL "$pid" 2>/dev/null || true
      rm -f "$pidfile"
      die "$name not healthy after ${timeout}s (killed pid $pid)" "$log"
    fi
    sleep 0.3
  done
}

# stop_pid NAME PIDFILE PATTERN [GRACE]: SIGTERM, wait up to GRACE seconds, then SIGKILL.
stop_pid() {
  local name=$1 pidfile=$2 pattern=$3 grace=${4:-20} pid i
  if ! pid_alive "$pidfile" "$pattern"; then
    rm -f "$pidfile"
    echo "$name: not running"
    return 0
  fi
  pid=$(<"$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    proc_running "$pid" || break
    sleep 0.1
  done
  if proc_running "$pid"; then
    kill -KILL "$pid" 2>/dev/null || true
    echo "$name: stopped (SIGKILL after ${grace}s)"
  else
    echo "$name: stopped"
  fi
  rm -f "$pidfile"
}

# kill_pid NAME PIDFILE PATTERN: SIGKILL right away (crash simulation for fault tests).
kill_pid() {
  local name=$1 pidfile=$2 pattern=$3 pid
  if ! pid_alive "$pidfile" "$pattern"; then
    rm -f "$pidfile"
    echo "$name: not running"
    return 0
  fi
  pid=$(<"$pidfile")
  kill -KILL "$pid"
  while proc_running "$pid"; do sleep 0.05; done
  rm -f "$pidfile"
  echo "$name: killed"
}

# apt_install PKG...: apt-get update at most once an hour across all scripts, then install.
# The flock lets up.sh install PostgreSQL and Prometheus in parallel without dpkg lock errors.
apt_install() {
  local log="$STATE/apt.log" stamp="$STATE/apt-updated"
  local apt=(apt-get -q -o DPkg::Lock::Timeout=300)
  export DEBIAN_FRONTEND=noninteractive
  exec 8>"$STATE/.apt.lock"
  flock 8
  if [[ -z $(find "$stamp" -mmin -60 2>/dev/null) ]]; then
    "${apt[@]}" update >>"$log" 2>&1 || die "apt-get update failed" "$log"
    touch "$stamp"
  fi
  "${apt[@]}" install -y --no-install-recommends "$@" >>"$log" 2>&1 ||
    die "apt-get install $* failed" "$log"
  exec 8>&-
}

# take_lock NAME: serialise concurrent runs of the same script (e.g. parallel test workers
# all calling `start`). The lock is fd 9; spawn closes it so servers don't inherit it.
take_lock() {
  exec 9>"$STATE/.$1.lock"
  flock -w 600 9 || die "$1: another infra/$1.sh has held $STATE/.$1.lock for 10 minutes"
}

# go_built NAME VERSION: .infra/bin/NAME exists and was built at VERSION.
go_built() { [[ -x $STATE/bin/$1 ]] && grep -qx -- "$2" "$STATE/bin/$1.version" 2>/dev/null; }

# go_build WHO NAME VERSION PACKAGE LOGFILE: build a Go command from the module proxy into
# .infra/bin, once per version. Module downloads and the build cache stay under .infra too, so
# nothing lands in the user's own Go folders.
go_build() {
  local who=$1 name=$2 version=$3 package=$4 log=$5 s
  go_built "$name" "$version" && return 0
  command -v go >/dev/null || die "$who: Go is needed to build $name (install golang 1.24 or newer)"
  s=$(now)
  GOBIN="$STATE/bin" GOMODCACHE="$STATE/go/mod" GOCACHE="$STATE/go/cache" CGO_ENABLED=0 \
    GOFLAGS=-mod=mod GOTOOLCHAIN=local \
    go install -trimpath -ldflags="-s -w" "$package@$version" >>"$log" 2>&1 ||
    die "$who: building $name $version failed" "$log"
  echo "$version" >"$STATE/bin/$name.version"
  echo "$who: built $name $version in $(since "$s")"
}
