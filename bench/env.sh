# Sourced by the bench scripts: cd to the project, build what is missing (the TypeScript, the load
# generator bench/loadgen/loadgen.c), parse "-r N". Sets: reps, RUN (bench/run.js), LOADGEN.
cd "$(dirname "${BASH_SOURCE[1]}")/.."
reps=3
if [ "${1:-}" = "-r" ]; then reps="$2"; shift 2; fi
[ -f dist/bench/run.js ] || npx tsc -p tsconfig.json
LOADGEN=$(node -e "console.log(require('./dist/bench/loadgen').loadgenPath())") || exit 2
RUN="node dist/bench/run.js -q -r $reps"
# run.js prints a MEDIAN line when it repeats; with -r 1 the RESULT line is the figure.
line=$([ "$reps" = 1 ] && echo RESULT || echo MEDIAN)
