"""keep_freed_memory (innerpo.train.allocator): a freed large buffer is reused without page
faults once it is applied, and is re-faulted page by page without it (each way in a fresh
process, since the setting is for the life of the process)."""

import platform
import subprocess
import sys

import pytest

from innerpo.train import allocator

SCRIPT = """
import resource, sys
import torch
from innerpo.train.allocator import keep_freed_memory
if sys.argv[1] == "on":
    assert keep_freed_memory()
faults = []
for _ in range(16):  # as training steps do: the same large buffer allocated, written, freed
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = torch.ones(64, 1 << 18)  # 64 MiB of float32
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    del x
print(max(faults[-4:]))  # after some cycles: glibc settles into reusing the block within ~10 here, when allowed
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_freed_buffers_are_reused_without_page_faults():
    def faults(mode):
        out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True)
        return int(out.stdout.split()[-1])

    pages = (64 << 20) // 4096  # 16384 pages of 4 KiB in 64 MiB
    assert faults("off") > pages // 2  # glibc unmaps a 64 MiB block on free: every cycle faults it in again
    assert faults("on") < pages // 100  # kept: written again without faults


def test_is_a_no_op_off_glibc(monkeypatch):
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("", ""))
    assert allocator.keep_freed_memory() is False
