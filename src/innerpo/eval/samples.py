"""Generation samples: greedy continuations of fixed probe prompts, base beside adapter.

Per shift the probes are the first `--eval.samples_per_shift` scored pairs (the same
ones in every run of a suite, since pairs are taken in source order), with the prompt
exactly as scored (template applied, cut by the length rule). Generation is transformers'
`generate` (greedy, left padding, at most `--eval.max_new_tokens` new tokens), once with
the adapter off (base) and once on. Each text is checked by innerpo.eval.degenerate; per
shift the summary counts degenerate and unfinished samples, and `text_flag` is set when
the adapter has more degenerate samples than the base. `samples.md` shows them side by side.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch

from innerpo.data.tokenize import TokenizedPair
from innerpo.eval.config import EvalConfig
from innerpo.eval.degenerate import is_degenerate, problems
from innerpo.models.precision import autocast


def _eos_ids(model, tok) -> list[int]:
    ids = {tok.eos_token_id} if tok.eos_token_id is not None else set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update([configured] if isinstance(configured, int) else configured or [])
    return sorted(ids)


@torch.no_grad()
def greedy(model, tok, prompts: list[tuple[int, ...]], max_new_tokens: int, adapter: bool) -> list[tuple[str, bool]]:
    """(text, ended) per prompt: the decoded continuation up to its end token, and whether one came."""
    if not prompts:
        return []
    eos = _eos_ids(model, tok)
    batch = tok.pad({"input_ids": [list(p) for p in prompts]}, padding=True, padding_side="left", return_tensors="pt")
    was_training = model.training
    model.eval()
    off = model.disable_adapter() if not adapter and hasattr(model, "disable_adapter") else nullcontext()
    try:
        with off, autocast(model):  # the run's precision, as in scoring (bf16 base weights need it)
            out = model.generate(
                input_ids=batch["input_ids"].to(model.device),
                attention_mask=batch["attention_mask"].to(model.device),
                do_sample=False,
                max_new_tokens=max_new_tokens,
                pad_token_id=tok.pad_token_id,
                eos_token_id=eos,
            )
    finally:
        model.train(was_training)
    results = []
    for row in out[:, batch["input_ids"].shape[1] :].tolist():
        stop = next((i for i, t in enumerate(row) if t in eos), None)
        results.append((tok.decode(row[:stop], skip_special_tokens=True).strip(), stop is not None))
    return results


def add_samples(summary: dict, model, tok, probes: dict[str, list[tuple[str, TokenizedPair]]], cfg: EvalConfig) -> None:
    """Generate for every shift's probes; add `samples` and per-shift counts to `summary`.

    probes: shift → [(prompt text, tokenized pair)]; the chosen completion is shown for reference.
    """
    variants = ["base", "adapter"] if hasattr(model, "disable_adapter") else ["adapter"]
    # One generate call per variant for all shifts' probes (cheaper than one per shift).
    prompts = [item.prompt for items in probes.values() for _, item in items]
    outputs = {v: iter(greedy(model, tok, prompts, cfg.max_new_tokens, adapter=v == "adapter")) for v in variants}
    samples = {}
    for name, items in probes.items():
        rows = []
        for prompt_text, item in items:
            row = {"prompt": prompt_text, "chosen": tok.decode(list(item.chosen), skip_special_tokens=True).strip()}
            for v in variants:
                text, ended = next(outputs[v])
                row[v] = text
                row[f"{v}_problems"] = problems(text, ended)
            rows.append(row)
        samples[name] = rows
        shift = summary["shifts"][name]
        shift["samples_n"] = len(rows)
        for v in variants:
            shift[f"{v}_degenerate"] = sum(is_degenerate(r[v]) for r in rows)
            shift[f"{v}_unfinished"] = sum("no_eos" in r[f"{v}_problems"] for r in rows)
        if "base" in variants:
            shift["text_flag"] = shift["adapter_degenerate"] > shift["base_degenerate"]
    summary["samples"] = samples
    summary["max_new_tokens"] = cfg.max_new_tokens


def _quote(text: str) -> str:
    return "\n".join("> " + line for line in (text or "(empty)").splitlines()) or "> (empty)"


def samples_markdown(summary: dict) -> str:
    """samples.md: per shift and probe, the prompt, the reference answer, base and adapter text with their flags."""
    lines = [
        f"# Generation samples: suite `{summary['suite']}`",
        "",
        f"Greedy, at most {summary.get('max_new_tokens')} new tokens. Flags: `repetitive` (over half the "
        "n-grams repeat), `empty`, `no_eos` (stopped at the token budget).",
    ]
    for name, rows in summary["samples"].items():
        shift = summary["shifts"][name]
        lines += ["", f"## {name}", ""]
        if "text_flag" in shift:
            lines.append(
                f"degenerate: base {shift['base_degenerate']}/{shift['samples_n']}, adapter "
                f"{shift['adapter_degenerate']}/{shift['samples_n']} ({'DEGENERATE' if shift['text_flag'] else 'ok'}); "
                f"NLL coherence: {'INCOHERENT' if shift.get('coherence_flag') else 'ok'}"
            )
        for j, row in enumerate(rows):
            lines += [
                "",
                f"### {name} #{j + 1}",
                "",
                "**prompt**",
                "",
                _quote(row["prompt"]),
                "",
                "**chosen (reference)**",
                "",
                _quote(row["chosen"]),
            ]
            for v in ("base", "adapter"):
                if v in row:
                    flags = ", ".join(row[f"{v}_problems"]) or "ok"
                    lines += ["", f"**{v}** ({flags})", "", _quote(row[v])]
    return "\n".join(lines) + "\n"
