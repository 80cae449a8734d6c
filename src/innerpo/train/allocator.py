"""Keep freed CPU memory in the process for reuse instead of handing it back to the OS.

A training step allocates and frees the same large activation buffers every step
(hidden states, the head's logits, the bf16 copies autocast makes of activations, their
gradients). glibc's malloc serves blocks above M_MMAP_THRESHOLD (128 KiB at start,
raised on its own up to 32 MiB) with fresh mmap pages, unmaps them on free, and returns
free memory at the top of the heap above M_TRIM_THRESHOLD to the OS; so those buffers
come back each step as new pages, and the first write to each page is a minor page
fault. With the two thresholds raised as below, a step's buffers are reused from its
fourth step on, with the same batches and losses (the measured before/after is in the
docs' results, "Speed against TRL").

This is what PyTorch's CPU performance guide gets from preloading jemalloc or tcmalloc
(LD_PRELOAD); that has to happen before the process starts, so it cannot come from a
`pip install`ed package. glibc's own `mallopt` can be set from inside the process; it is
called through ctypes because Python exposes no binding for it. The cost: memory freed
by one step stays mapped (counted in RSS) for the next, up to 1 GiB of free heap top;
blocks larger than 1 GiB are still mmapped and unmapped. Elsewhere (macOS, musl) this
is a no-op.

On CUDA it is applied too and is harmless: it only changes how host (CPU) memory is
reused; activations on the GPU live in torch's own caching allocator, which already keeps
freed blocks. Host-side buffers of a GPU run (batches, the reference table, checkpoint
copies) are small, so the retained heap stays small.
"""

from __future__ import annotations

import ctypes
import platform

M_TRIM_THRESHOLD = -1  # glibc malloc.h
M_MMAP_THRESHOLD = -3
THRESHOLD = 1 << 30  # 1 GiB: above any one activation of the models this package trains on CPU


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds to 1 GiB for this process (it keeps them).

    Returns True when applied, False where the C library is not glibc (nothing changed).
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)  # the C library the interpreter is linked against
    return bool(libc.mallopt(M_MMAP_THRESHOLD, THRESHOLD)) and bool(libc.mallopt(M_TRIM_THRESHOLD, THRESHOLD))
