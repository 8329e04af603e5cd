#!/usr/bin/env bash
# Writes the dev overlay's throwaway secrets into secrets/ next to this
# script (DEV ONLY; git-ignored). Existing files are kept, so that a
# re-run does not change the secrets of a running cluster; --force
# replaces them all.
#
#   secrets/hs256.secret   HS256 key shared by gateways and room nodes
#   secrets/upstream.jwt   the gateways' read-only token for their shared
#                          per-room Subscribe (rooms ["*"], one year)
#   secrets/store.env      url=postgresql://roomsync:...@roomsync-postgres:5432/roomsync
#   secrets/postgres.env   password=... (the same password)
#   secrets/client.jwt     NOT deployed: a read-write token for every room,
#                          valid one day, for trying the API with curl
#
# Needs python3 (standard library only) for the tokens.
set -euo pipefail

dir="$(cd "$(dirname "$0")" && pwd)/secrets"
force=0
[[ "${1:-}" == "--force" ]] && force=1

if [[ $force -eq 0 && -e "$dir/hs256.secret" ]]; then
  echo "make-secrets: $dir already exists (use --force to replace it)"
  exit 0
fi
umask 077
mkdir -p "$dir"

# 32 random bytes as base64: the key is the text itself (44 bytes).
head -c 32 /dev/urandom | base64 | tr -d '\n' > "$dir/hs256.secret"
password=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf 'password=%s\n' "$password" > "$dir/postgres.env"
printf 'url=postgresql://roomsync:%s@roomsync-postgres:5432/roomsync\n' "$password" > "$dir/store.env"

mint() {  # SUBJECT SCOPE LIFETIME_SECONDS
  python3 - "$dir/hs256.secret" "$1" "$2" "$3" <<'PY'
import base64, hashlib, hmac, json, sys, time
secret_file, sub, scope, lifetime = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=")
secret = open(secret_file, "rb").read().rstrip(b"\r\n")
claims = {"sub": sub, "rooms": ["*"], "scope": scope, "exp": int(time.time()) + lifetime}
data = b64(b'{"alg":"HS256","typ":"JWT"}') + b"." + b64(json.dumps(claims, separators=(",", ":")).encode())
sys.stdout.write((data + b"." + b64(hmac.new(secret, data, hashlib.sha256).digest())).decode())
PY
}
mint roomsync-gateway read $((365 * 24 * 3600)) > "$dir/upstream.jwt"
mint dev-client "read write" $((24 * 3600)) > "$dir/client.jwt"

echo "make-secrets: wrote $dir (dev only)"
