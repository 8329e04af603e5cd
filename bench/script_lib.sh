# Shared by the bench scripts that run topologies (scaling.sh,
# watch_scale.sh): sourced after `self` (the script's name) is set.

die() {
  echo "$self: $*" >&2
  exit 1
}
skip() {
  echo "$self: skipped: $*" >&2
  exit 77
}
log() { echo "$self [$(date +%T)] $*" >&2; }
# The script's header comment, up to `set -euo`, is its help.
usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}
unknown_argument() {
  echo "$self: unknown argument: $1" >&2
  usage
}

# `cleanup` (the script's own) runs on every exit; a signal exits with the
# shell's code for it, so that cleanup still runs.
trap_cleanup_on_exit() {
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
}

# run.txt lines that say which sources ($1, a checkout) and which machine.
describe_sources_and_machine() {
  local src=$1
  if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
    echo "commit $(git -C "$src" rev-parse --short HEAD)$(
      git -C "$src" diff --quiet HEAD -- 2>/dev/null || echo ' (worktree has uncommitted changes)')"
  else
    echo "commit unknown ($src is not a git checkout)"
  fi
  echo "nproc $(nproc)"
  echo "cpu_model $(grep -m 1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "kernel $(uname -r)"
}
