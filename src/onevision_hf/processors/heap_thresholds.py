"""The C heap's thresholds raised once per process, so that a first selection keeps its scratch memory.

glibc's malloc serves a request above its *mmap threshold* with a fresh mapping, unmapped again on free, and
hands the free memory at the top of a heap back to the kernel once it exceeds the *trim threshold*. Both start
at 128 KiB and rise only when the program frees a mapped block larger than the mmap threshold: the threshold
becomes that block's size, the trim threshold twice it (the dynamic threshold of ``mallopt(3)``). Scoring a
sampled frame allocates and frees a few MB of numpy temporaries. Until the process has freed one large block,
those pages go back to the kernel after every frame and come back zero-filled, one page fault each, for the
next: on the bundled phone clip, the first selection in a process took about 90,000 minor page faults and
0.14 s more than the second, which took 10,000 (`benchmarks/first_selection.py`; `benchmarks/README.md`,
"Stop 27"; `tests/test_heap_thresholds.py`).

`raise_heap_thresholds` allocates and frees one block of `THRESHOLD_BLOCK_BYTES` that is never written (a
mapping and an unmapping, no page of it touched). glibc then keeps up to twice that much free memory per heap,
which is where any program stands after it has freed a large array (a first selection ends near there too).
No malloc option is set (``mallopt`` would switch the dynamic threshold off for the whole process), and an
allocator without this heuristic just frees the block.
"""

import functools

import numpy as np

# 31 MiB: just under the largest freed block glibc's dynamic threshold follows (32 MiB on 64-bit, malloc's
# header included). First selections in a fresh process (`benchmarks/first_selection.py`): the phone clip
# 91,000 minor faults with no block, 75,000 with 2 MiB, 17,000-18,000 with 8 or 31 MiB; the `reference` preset
# on a 30 s 720p clip (full-resolution energy maps of 3.7 MB) 163,000, 121,000 with 8 MiB, 56,000-57,000 with
# 24 or 31 MiB (a second selection: 6,000-31,000)
THRESHOLD_BLOCK_BYTES = 31 * 2**20


@functools.cache
def raise_heap_thresholds() -> None:
    """Free one untouched `THRESHOLD_BLOCK_BYTES` block (once per process), raising glibc's dynamic mmap and
    trim thresholds to its size and twice it."""
    np.empty(THRESHOLD_BLOCK_BYTES, np.uint8)  # freed at once: the free is what raises them
