# Sourced by the scripts that run a Python helper server: a venv with pinned packages under
# target/, and a wait for the server's port.

# ensure_venv VENV PROBE PACKAGE...: makes VENV with PACKAGE... unless `python -c PROBE` works there.
ensure_venv() {
    local venv=$1 probe=$2
    shift 2
    "$venv/bin/python" -c "$probe" 2>/dev/null && return 0
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
        echo "python venv support is missing; installing python3-venv with apt-get" >&2
        if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    fi
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "$@"
}

listening() {
    python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$1" 2>/dev/null
}

# wait_listening PORT LOG: up to 10 s for the server on PORT, else its LOG and a failure.
wait_listening() {
    for _ in $(seq 1 100); do listening "$1" && return 0; sleep 0.1; done
    cat "$2" >&2
    return 1
}
