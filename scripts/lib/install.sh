# Helpers to install what a script needs, only when missing; sourced by
# scripts/install-test-deps.sh and crates/bench/run.sh.

# Runs a command as root: directly when root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "install: need root (or sudo) to run: $*" >&2
        return 1
    fi
}

# Installs the Debian package of the same name as the command (or the package named
# second), unless the command exists.
debian_command() {
    local package="${2:-$1}"
    if command -v "$1" >/dev/null 2>&1; then
        echo "$1: present"
    else
        echo "$1: installing the Debian package $package"
        as_root apt-get update
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y --no-install-recommends "$package"
    fi
}

# Adds a Rust target to the toolchain, unless installed.
rust_target() {
    if rustup target list --installed 2>/dev/null | grep -qx "$1"; then
        echo "rust target $1: present"
    else
        echo "rust target $1: adding"
        rustup target add "$1"
    fi
}
