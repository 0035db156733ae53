#!/usr/bin/env bash
# `make test`: the whole suite, in five processes at once that share no port and no directory, each a
# layer that stands alone. On 2 cores the lanes are CPU-bound, so they are cut to end together: with unit
# and security in one lane it ended last, 3 minutes alone on one core after the others (2026-12-07,
# by a per-process CPU sample: the trainings of tests/unit/pipeline_compiler are 827 of its 982 s):
#   - ml: the trainer, Transform and Evaluator on tiny data in this process (tests/unit/pipeline_compiler);
#   - unit: the images' closures (tests/images, which mostly wait on the package index), then the
#     in-memory layers and the Firestore rules (tests/unit, tests/security);
#   - integration: the emulator-backed flows and the fuzz (tests/integration);
#   - e2e: real TFX through the local stack (tests/e2e), the only lane that runs whole pipelines, so still
#     one at a time; in the foreground, so its progress shows as it goes;
#   - rehearsal: the rehearsed deployment and Chromium (tests/rehearsal, tests/browser).
# Every stack a test starts takes free ports (scripts/stack.py StackConfig.ephemeral) and each process
# has its own --basetemp. The other logs are printed when the suite ends, then one closing line counts
# all five (CI reads the last summary line).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
out=${TRAINYARD_LOCAL_DIR:-.local}/test-suite
mkdir -p "$out"
rm -rf "$out"/*.xml "$out"/*.log "$out"/tmp-*

lane() {  # lane NAME PATHS... : one pytest process, its log and junit report under $out
  local name=$1; shift
  # The slowest tests and fixtures close each log, and the lane's CPU seconds (its own and those of the
  # processes it started and waited for) its last line: where the next cut is, without another run.
  local TIMEFORMAT="lane $name: %0R s wall, %0U s user + %0S s system CPU"
  time "$PY" -m pytest "$@" -p no:cacheprovider --durations=30 --basetemp="$out/tmp-$name" --junitxml="$out/$name.xml"
}
background=(ml:"tests/unit/pipeline_compiler"
            unit:"tests/images tests/unit --ignore=tests/unit/pipeline_compiler tests/security"
            integration:"tests/integration" rehearsal:"tests/rehearsal tests/browser")
pids=()
trap 'kill "${pids[@]}" 2>/dev/null' EXIT
for spec in "${background[@]}"; do
  # shellcheck disable=SC2086  # the paths split on spaces
  lane "${spec%%:*}" ${spec#*:} >"$out/${spec%%:*}.log" 2>&1 &
  pids+=($!)
done
lane e2e tests/e2e
codes=($?)
for pid in "${pids[@]}"; do wait "$pid"; codes+=($?); done
trap - EXIT

for spec in "${background[@]}"; do
  echo
  echo "---- ${spec#*:} (ran beside the rest) ----"
  cat "$out/${spec%%:*}.log"
done
echo
grep -h '^lane ' "$out"/{ml,unit,integration,rehearsal}.log  # e2e's printed above, as it ended
"$PY" - "$out"/{e2e,ml,unit,integration,rehearsal}.xml <<'PY'
import sys
import xml.etree.ElementTree as ET

totals = dict(passed=0, failed=0, skipped=0)
missing = []
for path in sys.argv[1:]:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        missing.append(path)
        continue
    for suite in root.iter("testsuite"):
        tests, failures, errors, skipped = (int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
        totals["failed"] += failures + errors
        totals["skipped"] += skipped
        totals["passed"] += tests - failures - errors - skipped
if missing:
    print("no report (the process died before writing it): " + ", ".join(missing))
print(f"suite: {totals['passed']} passed, {totals['failed']} failed, {totals['skipped']} skipped")
PY
for rc in "${codes[@]}"; do [ "$rc" -ne 0 ] && exit "$rc"; done
exit 0
