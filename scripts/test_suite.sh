#!/usr/bin/env bash
# `make test`: the whole suite, in three processes that share no port and no directory:
#   - the images' closures (tests/images): mostly waits on the package index;
#   - unit, security and integration: the in-memory layers plus the emulator-backed flows;
#   - e2e, rehearsal and browser: real TFX, the rehearsed deployment, Chromium.
# Every stack a test starts takes free ports (scripts/stack.py StackConfig.ephemeral) and each
# process has its own --basetemp, so the two halves run at once (about half the wall time of one
# after the other on 2 cores, since the flows mostly wait). Only e2e runs real TFX pipelines, so
# there is still one at a time. The second and third logs are printed when the suite ends, then one
# closing line counts all three (CI reads the last summary line).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
out=${TRAINYARD_LOCAL_DIR:-.local}/test-suite
mkdir -p "$out"
rm -rf "$out"/*.xml "$out"/*.log "$out"/tmp-*

pids=()
trap 'kill "${pids[@]}" 2>/dev/null' EXIT
"$PY" -m pytest tests/images -p no:cacheprovider --basetemp="$out/tmp-images" \
  --junitxml="$out/images.xml" >"$out/images.log" 2>&1 &
pids+=($!)
"$PY" -m pytest tests/unit tests/security tests/integration -p no:cacheprovider --basetemp="$out/tmp-flows" \
  --junitxml="$out/flows.xml" >"$out/flows.log" 2>&1 &
pids+=($!)

# In the foreground, so its progress shows as it goes.
"$PY" -m pytest tests --ignore=tests/images --ignore=tests/unit --ignore=tests/security \
  --ignore=tests/integration --basetemp="$out/tmp-stack" --junitxml="$out/stack.xml"
stack=$?
wait "${pids[1]}"; flows=$?
wait "${pids[0]}"; img=$?
trap - EXIT

for part in flows:"tests/unit, tests/security, tests/integration" images:"tests/images"; do
  echo
  echo "---- ${part#*:} (ran beside the rest) ----"
  cat "$out/${part%%:*}.log"
done
"$PY" - "$out/stack.xml" "$out/flows.xml" "$out/images.xml" <<'PY'
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
for rc in $stack $flows $img; do [ "$rc" -ne 0 ] && exit "$rc"; done
exit 0
