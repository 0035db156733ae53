"""The suite's temporary files go to one scratch directory that the session removes (tests/conftest.py)."""
import os
import subprocess
import sys
import tempfile


def test_temporary_files_here_and_in_started_processes_go_to_the_session_scratch():
    scratch = tempfile.gettempdir()
    assert os.path.basename(scratch).startswith("trainyard-tests-")
    assert os.environ["TMPDIR"] == scratch
    child = subprocess.run([sys.executable, "-c", "import tempfile; print(tempfile.mkdtemp())"],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert os.path.dirname(child) == scratch
