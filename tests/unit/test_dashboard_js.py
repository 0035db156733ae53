"""The dashboard's own unit tests (Vitest: card states and actions, filters, wizard field mapping,
time zones) run from pytest so `make test` covers them."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboard"


@pytest.mark.skipif(not shutil.which("node") or not (DASHBOARD / "node_modules" / ".bin" / "vitest").exists(),
                    reason="needs node and `npm ci` in dashboard/ (make setup runs scripts/setup_dashboard.sh)")
def test_vitest_suite_passes():
    result = subprocess.run([str(DASHBOARD / "node_modules" / ".bin" / "vitest"), "run", "--reporter=dot"],
                            cwd=DASHBOARD, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
