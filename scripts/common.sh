# Shared by scripts/run and scripts/test: install what is missing, build the site.
# Source it; it sets REPO and CARGO_TARGET_DIR, and build_site sets SITE_ROOT.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Cargo's own default, ./target, unless CARGO_TARGET_DIR says otherwise (.ci/run keeps one
# outside the clone, so that a fresh clone builds incrementally).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
export PATH="$HOME/.cargo/bin:$PATH"
# Incremental compilation keeps a copy of every build's intermediate artifacts; on this
# machine's disk it grew past 40 GB in an afternoon of test runs. Off unless asked for.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# The target directory is shared by every checkout (CI clones into another folder). When a
# checkout's own build is fresh, cargo leaves in place a binary or wasm that another checkout
# copied there, which may come from other sources, and server-function URLs embed the
# checkout's path. So after another checkout used it, this workspace's own crates are
# rebuilt; the dependencies stay built.
claim_target_dir() {
  local marker="$CARGO_TARGET_DIR/.checkout"
  if [ -d "$CARGO_TARGET_DIR" ] && [ "$(cat "$marker" 2>/dev/null)" != "$REPO" ]; then
    say "the build directory was last used by another checkout: rebuilding this workspace's crates"
    local flags
    for flags in "" "--release" "--target wasm32-unknown-unknown" "--target wasm32-unknown-unknown --profile wasm-release"; do
      # shellcheck disable=SC2086
      (cd "$REPO" && cargo clean --quiet $flags -p app -p domain -p frontend -p scim -p server)
    done
  fi
  mkdir -p "$CARGO_TARGET_DIR"
  printf '%s\n' "$REPO" >"$marker"
}

# The wasm target and wasm-bindgen-cli at exactly the version in Cargo.lock.
ensure_rust_tools() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  local want
  want="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$REPO/Cargo.lock")"
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$want" ]; then
    say "installing wasm-bindgen-cli $want (a few minutes, once)"
    # Some of its newest dependencies need a newer rustc; let cargo pick older ones.
    CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback \
      cargo install wasm-bindgen-cli --version "$want" --force
  fi
}

# Node.js runs the site's build tools: binaryen's wasm-opt from npm (Debian's older binaryen
# breaks the module, see BUILD-NOTES) pinned in tools/package-lock.json, and
# tools/site-pkg.mjs.
ensure_site_tools() {
  if ! command -v npm >/dev/null 2>&1; then
    echo "Node.js and npm are needed to build the console (apt-get install -y nodejs npm)." >&2
    exit 1
  fi
  npm_ci_unless_current tools node_modules/.bin/wasm-opt "the site's build tools (binaryen's wasm-opt)"
}

# Installs DIR's pinned npm packages (DIR/package-lock.json) when DIR/PRESENT is missing or
# the lock file changed since the last install; WHAT names them.
npm_ci_unless_current() {
  local dir="$REPO/$1" present="$2" what="$3"
  if [ ! -e "$dir/$present" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    say "installing $what from npm"
    (cd "$dir" && npm ci --no-audit --no-fund)
  fi
}

# Builds the hydrating wasm, its JS glue and the CSS into $SITE_ROOT/pkg/<hash>, a folder named
# by the hash of the build's content, with brotli and gzip copies, and $SITE_ROOT/hash.txt
# naming it for the server (tools/site-pkg.mjs); prints the sizes. The wasm is split at the
# console's lazy routes (tools/wasm-split): a main module with the framework and the console's
# frame, and a module per page that the browser loads when it first shows the page. One site
# per profile. A running server picks up a rebuilt site at its next page: it reads the hash
# file for every page it renders.
# "release" is what ships: the wasm-release profile (opt-level z, LTO), then wasm-opt -Oz.
build_site() {
  local profile="${1:-debug}" dir flags=() staging module
  if [ "$profile" = release ]; then
    flags=(--profile wasm-release); dir=wasm-release
  else
    dir=debug
  fi
  ensure_site_tools
  SITE_ROOT="$CARGO_TARGET_DIR/site/$profile"
  say "building the console's wasm ($profile)"
  # Split: the pages as lazy routes (the `split` feature), and the linker's relocations,
  # which the splitter reads, kept (this replaces the wasm's flags of .cargo/config.toml).
  (cd "$REPO" && CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="--cfg erase_components -Clink-args=--emit-relocs" \
    cargo build -p frontend --lib --features split --target wasm32-unknown-unknown "${flags[@]}")
  staging="$CARGO_TARGET_DIR/site/$profile.staging"
  rm -rf "$staging"
  mkdir -p "$staging"
  say "splitting the wasm at its lazy routes"
  (cd "$REPO" && cargo run --quiet --release --locked --manifest-path tools/wasm-split/Cargo.toml -- \
    "$CARGO_TARGET_DIR/wasm32-unknown-unknown/$dir/frontend.wasm" "$staging")
  # The lazily loaded modules call into the main one through the exports the linker made.
  wasm-bindgen --target web --no-typescript --keep-lld-exports --no-demangle \
    --out-name console --out-dir "$staging" "$staging/console_split.wasm"
  rm "$staging/console_split.wasm"
  mv "$staging/console_bg.wasm" "$staging/console.wasm"
  if [ "$profile" = release ]; then
    say "optimising the wasm modules for size (wasm-opt -Oz, about a minute)"
    for module in "$staging"/*.wasm; do
      # The features rustc enables for wasm32 by default; wasm-opt must know them to keep them.
      "$REPO/tools/node_modules/.bin/wasm-opt" -Oz --strip-producers \
        --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
        --enable-mutable-globals --enable-reference-types --enable-multivalue \
        "$module" -o "$module"
    done
  fi
  cp "$REPO/style/main.css" "$staging/console.css"
  node "$REPO/tools/site-pkg.mjs" "$staging" "$SITE_ROOT"
  rm -rf "$staging"
}

# Debian's Chromium (Playwright cannot download its own browser here) and the npm packages
# of the browser tests.
ensure_browser_tests() {
  if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "Chromium is missing: run 'sudo apt-get install -y chromium' and try again." >&2
      exit 1
    fi
    say "installing Chromium from Debian's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "Node.js and npm are needed for the browser tests (apt-get install -y nodejs npm)." >&2
    exit 1
  fi
  npm_ci_unless_current end2end node_modules/@playwright/test "the browser tests' npm packages"
}

ensure_rust_components() {
  local missing=()
  cargo fmt --version >/dev/null 2>&1 || missing+=(rustfmt)
  cargo clippy --version >/dev/null 2>&1 || missing+=(clippy)
  if [ "${#missing[@]}" -gt 0 ]; then
    say "adding ${missing[*]}"
    rustup component add "${missing[@]}"
  fi
}

ensure_nextest() {
  if ! cargo nextest --version >/dev/null 2>&1; then
    say "installing cargo-nextest"
    cargo install cargo-nextest --locked
  fi
}

# A virtual environment with the pinned SCIM conformance checker (scim2-tester), reinstalled
# only when the pinned versions change.
CONFORMANCE_VENV="$HOME/.cache/scim-console/venv"
ensure_conformance_tools() {
  local requirements="$REPO/scripts/scim-conformance-requirements.txt" stamp="$CONFORMANCE_VENV/.requirements"
  if ! cmp -s "$requirements" "$stamp" 2>/dev/null; then
    say "installing the SCIM conformance checker (scim2-tester)"
    rm -rf "$CONFORMANCE_VENV"
    python3 -m venv "$CONFORMANCE_VENV"
    "$CONFORMANCE_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$stamp"
  fi
}

# The machine's PostgreSQL on 127.0.0.1:5432 (trust auth), started if it is down.
POSTGRES_URL="postgres://postgres@127.0.0.1:5432/postgres"
ensure_postgres() {
  if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    say "starting PostgreSQL"
    local version
    version="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)"
    if [ -z "$version" ] || ! pg_ctlcluster --skip-systemctl-redirect "$version" main start; then
      echo "PostgreSQL is not available on 127.0.0.1:5432 and could not be started." >&2
      return 1
    fi
    for _ in $(seq 1 50); do
      pg_isready -q -h 127.0.0.1 -p 5432 && return 0
      sleep 0.2
    done
    echo "PostgreSQL did not become ready." >&2
    return 1
  fi
}

# Drops the throw-away databases the integration tests create (scimtest_*).
drop_test_databases() {
  psql "$POSTGRES_URL" -At -c "SELECT datname FROM pg_database WHERE datname LIKE 'scimtest\_%'" |
    while read -r database; do
      psql "$POSTGRES_URL" -q -c "DROP DATABASE IF EXISTS \"$database\" WITH (FORCE)"
    done
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
