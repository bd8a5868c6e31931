"""A process's first selection keeps its scratch memory between frames (`processors.heap_thresholds`).

Each check runs in a fresh interpreter: the thresholds only ever rise, so any earlier test in this process
would already have raised them."""

import json
import platform
import subprocess
import sys

import pytest

from paths import MEDIA

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's dynamic malloc thresholds")

CHURN = r"""
import json, resource, sys
import numpy as np
if sys.argv[1] == "raised":
    from onevision_hf.processors.heap_thresholds import raise_heap_thresholds
    raise_heap_thresholds()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
np.ones(2**17, np.float32)  # one 512 KiB mapping freed: glibc's thresholds rise to 512 KiB and 1 MiB
start = faults()
for _ in range(16):  # a frame's scratch (2 MiB in blocks under the threshold) written, freed, allocated again
    scratch = [np.ones(2**16, np.float32) for _ in range(8)]
    del scratch
print(json.dumps(faults() - start))
"""

FIRST_SELECTIONS = r"""
import json, resource, sys
from onevision_hf import OneVisionVideoProcessor
processor = OneVisionVideoProcessor()
counts = []
for _ in range(2):
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    processor.select(sys.argv[1])
    counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start)
print(json.dumps(counts))
"""


def _child(script: str, *args: str):
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=300,
                          check=True)
    return json.loads(done.stdout.splitlines()[-1])


def test_raised_thresholds_keep_freed_scratch_mapped():
    page_count = 2**21 // 4096  # pages of one frame's scratch
    assert _child(CHURN, "default") >= 8 * page_count  # handed back to the kernel and faulted in every time
    assert _child(CHURN, "raised") <= 2 * page_count  # faulted in once, then reused


def test_first_selection_in_a_process_faults_about_as_often_as_the_second():
    first, second = _child(FIRST_SELECTIONS, str(MEDIA / "beach-portrait-h264.mp4"))
    # without the raised thresholds: about 70,000 against 8,000 on this clip
    assert first < second + 25_000, (first, second)
