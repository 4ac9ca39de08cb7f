# Sourced by scripts/run and scripts/test: install what is missing, idempotently.
# Debian packages come from apt (as root); Python packages go into .venv in the clone.

VENV="${TELEPHONY_VENV:-$PWD/.venv}"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

apt_updated=""
apt_install() {
    local missing=()
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get to install them"
    [ "$(id -u)" -eq 0 ] || die "missing packages ${missing[*]}: run as root, or install them first"
    say "installing ${missing[*]}"
    if [ -z "$apt_updated" ]; then
        apt-get update -q >/dev/null
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# An Asterisk on PATH that telephony.pbx.provision will use (its MIN_RELEASES: 20.12, 21.7,
# 22.2 or newer); otherwise provisioning debootstraps one.
asterisk_on_path() {
    command -v asterisk >/dev/null || return 1
    local release major minor
    release=$(asterisk -V 2>/dev/null | sed -n 's/^Asterisk \([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
    [ -n "$release" ] || return 1
    read -r major minor <<<"$release"
    [ "$major" -gt 22 ] || { [ "$major" -eq 22 ] && [ "$minor" -ge 2 ]; } ||
        { [ "$major" -eq 21 ] && [ "$minor" -ge 7 ]; } || { [ "$major" -eq 20 ] && [ "$minor" -ge 12 ]; }
}

find_python() {
    local candidate
    for candidate in "${TELEPHONY_PYTHON:-}" python3 python3.13 python3.12 python3.11; do
        [ -n "$candidate" ] || continue
        command -v "$candidate" >/dev/null || continue
        "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
            && { command -v "$candidate"; return 0; }
    done
    return 1
}

ensure_system_packages() {
    local packages=(ca-certificates "$@")
    asterisk_on_path || packages+=(debootstrap)
    find_python >/dev/null || packages+=(python3 python3-venv)
    apt_install "${packages[@]}"
}

# ensure_venv [extra]: create .venv and install the package (editable) with an extra.
ensure_venv() {
    local extra="${1:-}" python stamp want installed
    python=$(find_python) || die "Python >= 3.11 is required"
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating $VENV"
        "$python" -m venv "$VENV" 2>/dev/null || { apt_install python3-venv; "$python" -m venv "$VENV"; }
    fi
    stamp="$VENV/.telephony-installed"
    want="$(sha256sum pyproject.toml | cut -d' ' -f1) ${extra}"
    installed="$(cat "$stamp" 2>/dev/null || true)"
    # A venv installed with an extra (scripts/test's dev) already holds the plain install.
    if [ -z "$extra" ] && [ "${installed%% *}" = "${want%% *}" ]; then
        return 0
    fi
    if [ "$installed" != "$want" ]; then
        say "installing Python packages into $VENV"
        "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
        "$VENV/bin/python" -m pip install -q -e ".${extra:+[$extra]}"
        echo "$want" > "$stamp"
    fi
}
