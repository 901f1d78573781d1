"""Bad input through the real command line (CONTRACT.md, "Errors and exit codes").

For every broken input and for both `info` and `segment`: exit code 2, exactly one line on
stderr (progress lines aside) that names the input and says what is wrong, no traceback,
and no OUTDIR left behind (or left empty).
"""

from __future__ import annotations

import pytest
from bad_inputs import BUILDERS
from cli_process import run_cli
from MedSegAILib.progress import PROGRESS_LINE

EXPECTED = {
    "truncated .nii.gz": "file is truncated or damaged",
    "text file named .nrrd": "cannot be read as a nrrd image",
    "2-D image": "image is not 3-D",
    "DICOM slice missing": "missing slice(s)",
    "two DICOM series": "holds 2 DICOM series",
    "MR series": "modality is MR, not CT",
    "NaN volume": "voxels are NaN or infinite",
    "empty folder": "folder is empty",
    "missing path": "no such file or folder",
}


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip() and not PROGRESS_LINE.match(line)]


@pytest.mark.parametrize("problem", list(BUILDERS))
@pytest.mark.parametrize("command", ["info", "segment"])
def test_bad_input_exits_2_with_one_line_and_no_output(tmp_path, shared_data, problem, command):
    bad = BUILDERS[problem](tmp_path, shared_data)
    outdir = tmp_path / "out"
    args = [command, str(bad)] + (["-o", str(outdir)] if command == "segment" else [])
    result = run_cli(*args)
    if command == "segment" and result.returncode == 1 and "not available yet" in result.stderr:
        pytest.xfail("`segment` still answers 'not available yet' (its engine is being built)")
    assert "Traceback" not in result.stderr
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert result.returncode == 2, result.stderr
    assert str(bad) in lines[0]
    assert EXPECTED[problem] in lines[0]
    assert not outdir.exists() or not any(outdir.iterdir())


def test_every_builder_has_an_expected_message():
    assert set(EXPECTED) == set(BUILDERS)
