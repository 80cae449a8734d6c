"""innerpo: preference optimization of causal LMs with LoRA, at the output and in the hidden states."""

import logging


def _not_the_optional_cpu_kernel(record: logging.LogRecord) -> bool:
    """bitsandbytes (imported by peft whenever it is installed, i.e. with `innerpo[qlora]`) asks the
    Hugging Face hub for an optional CPU 4-bit kernel at import and warns on every command when it
    cannot have it; its own pure-torch path runs instead, so the notice says nothing to act on."""
    return "gemm_4bit_forward" not in record.getMessage()


logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(_not_the_optional_cpu_kernel)
