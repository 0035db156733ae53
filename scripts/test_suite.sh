#!/usr/bin/env bash
# `make test`: the whole suite. The image-closure check (tests/images) mostly waits on the package
# index and opens no port, so it runs beside the rest instead of after it; its log is printed when the
# suite ends, then one closing line counts both (CI reads the last summary line).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
out=${TRAINYARD_LOCAL_DIR:-.local}/test-suite
mkdir -p "$out"
rm -f "$out"/*.xml "$out"/images.log

"$PY" -m pytest tests/images -p no:cacheprovider --junitxml="$out/images.xml" >"$out/images.log" 2>&1 &
images=$!
trap 'kill "$images" 2>/dev/null' EXIT

"$PY" -m pytest tests --ignore=tests/images --junitxml="$out/rest.xml"
rest=$?
wait "$images"
img=$?
trap - EXIT

echo
echo "---- tests/images (ran beside the suite) ----"
cat "$out/images.log"
"$PY" - "$out/rest.xml" "$out/images.xml" <<'PY'
import sys
import xml.etree.ElementTree as ET

totals = dict(passed=0, failed=0, skipped=0)
for path in sys.argv[1:]:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        continue
    for suite in root.iter("testsuite"):
        tests, failures, errors, skipped = (int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
        totals["failed"] += failures + errors
        totals["skipped"] += skipped
        totals["passed"] += tests - failures - errors - skipped
print(f"suite: {totals['passed']} passed, {totals['failed']} failed, {totals['skipped']} skipped")
PY
exit $(( rest != 0 ? rest : img ))
