"""benchmarks/gpu_check.py cannot rot: its CPU dry run runs every section, and it notices a torch without
varlen_attn. (It has not run on a GPU in this package's CI: no GPU is lent to it.)"""

import dataclasses
import importlib.util
import subprocess
import sys

import pytest

from onevision_hf.modeling import packed_attention

from paths import ASSETS

SCRIPT = ASSETS.parent / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    sys.path.insert(0, str(SCRIPT.parent))  # it imports encoder_throughput beside it
    try:
        spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(SCRIPT.parent))


def test_the_cpu_dry_run_prints_every_section_and_passes(tmp_path):
    table = tmp_path / "table.md"
    result = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--output", str(table)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    text = table.read_text()
    for section in ("| environment |", "| parity |", "| speed |", "| end to end |", "| LLaVA generate |"):
        assert section in text
    assert "| parity | sdpa, per sample | bfloat16 | PASS |" in text and ", 0 failed (" in text


def test_a_torch_without_varlen_attn_fails_the_check_on_cuda_only(gpu_check, monkeypatch):
    assert not gpu_check.varlen_row("cpu").failed
    monkeypatch.setattr(packed_attention, "TORCH_VARLEN",
                        dataclasses.replace(packed_attention.TORCH_VARLEN, function=None))
    for device_type, failed in (("cpu", False), ("cuda", True)):
        row = gpu_check.varlen_row(device_type)
        assert row.result == "MISSING" and row.failed is failed


def test_parity_fails_beyond_the_documented_tolerance(gpu_check, monkeypatch):
    monkeypatch.setitem(gpu_check.RELATIVE_TOLERANCE, gpu_check.torch.bfloat16, 1e-6)
    rows = gpu_check.parity_rows(gpu_check.torch.device("cpu"), [gpu_check.torch.bfloat16])
    assert any(row.failed and row.check == "eager" for row in rows)
