"""How a STaR run tokenizes its prompts and decodes rationales (shared by training-data
generation in innerpo.star.loop and evaluation in innerpo.star.heldout)."""

from __future__ import annotations

from innerpo.data.tokenize import PairTokenizer
from innerpo.star.config import StarConfig, StarRunConfig
from innerpo.star.generate import GenSettings


def pair_tokenizer(cfg: StarRunConfig, tok) -> PairTokenizer:
    return PairTokenizer(tok, max(cfg.data.max_length, 2048), "prompt_left", cfg.data.chat_template)


def gen_settings(s: StarConfig, pair_tok: PairTokenizer, seed: int, greedy: bool = False) -> GenSettings:
    # With a chat template the end-of-turn token ends a rationale. Without one, prompts are
    # the messages joined by newlines, so a newline ends it (exemplar rationales are one line)
    # before the model goes on to write the next question itself.
    stop = () if pair_tok.use_template else ("\n",)
    return GenSettings(
        max_new_tokens=s.max_new_tokens,
        temperature=0.0 if greedy else s.temperature,
        top_p=s.top_p,
        stop=stop,
        batch_tokens=s.gen_batch_tokens,
        max_rows=s.gen_batch_size,
        seed=seed,
    )
