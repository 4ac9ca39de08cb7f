# Sourced by scripts/run: keep long-running commands up, so the quick start fails open too.
#
#   supervise NAME CMD [ARG...]  run CMD in the background; whenever it exits, say so in one
#                                line and start it again after a backoff: 1 s, doubling up
#                                to 30 s, back to 1 s once it has stayed up for 60 s
#   wait_supervised              block until a signal trap calls stop_supervised
#   stop_supervised              stop every supervisor and its command (SIGTERM), no restart
#
# A supervisor also stops on SIGINT, so Ctrl-C in a terminal (which signals the whole
# process group) stops the commands without a restart line.

SUPERVISORS=()
SUPERVISE_MAX_BACKOFF_S=30
SUPERVISE_STABLE_S=60

supervise() {
    local name=$1
    shift
    _supervisor "$name" "$@" &
    SUPERVISORS+=($!)
}

_supervisor() {
    local name=$1 child="" backoff=1 restarts=0 started status how
    shift
    trap '_supervisor_stop "$child"' INT TERM
    while :; do
        started=$SECONDS
        "$@" &
        child=$!
        status=0
        wait "$child" || status=$?
        if [ "$status" -gt 128 ]; then
            how="killed by SIG$(kill -l $((status - 128)) 2>/dev/null || echo $((status - 128)))"
        else
            how="status $status"
        fi
        if [ $((SECONDS - started)) -ge "$SUPERVISE_STABLE_S" ]; then
            backoff=1
        fi
        restarts=$((restarts + 1))
        printf '==> %s exited (%s) after %ss; restart %s in %ss\n' \
            "$name" "$how" $((SECONDS - started)) "$restarts" "$backoff" >&2
        sleep "$backoff" &
        child=$!
        wait "$child" || true
        backoff=$((backoff * 2 > SUPERVISE_MAX_BACKOFF_S ? SUPERVISE_MAX_BACKOFF_S : backoff * 2))
    done
}

_supervisor_stop() {
    if [ -n "$1" ]; then
        kill -TERM "$1" 2>/dev/null || true
        wait "$1" 2>/dev/null || true
    fi
    exit 0
}

wait_supervised() {
    # Supervisors never end by themselves: this returns when a trapped signal arrives.
    wait "${SUPERVISORS[@]}" || true
}

stop_supervised() {
    local pid
    for pid in "${SUPERVISORS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${SUPERVISORS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    SUPERVISORS=()
}
