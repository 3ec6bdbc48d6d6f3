# Sourced by the bench scripts: cd to the project, parse "-r N", find or set up the bench rig.
# Sets: reps, RIG; leaves the remaining arguments in "$@" for the caller (bash only).
cd "$(dirname "${BASH_SOURCE[1]}")/.."
reps=3
if [ "${1:-}" = "-r" ]; then reps="$2"; shift 2; fi
RIG="${RIG_DIR:-/tmp/linkpoll-rig}"
[ -x "$RIG/rig.sh" ] || RIG=$(../shared/bench-rig/setup.sh)
# rig.sh prints a MEDIAN line only when it repeats; with -r 1 the RESULT line is the figure.
line=$([ "$reps" = 1 ] && echo RESULT || echo MEDIAN)
