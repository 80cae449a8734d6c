"""A scripted Generator for loop tests: answers addition questions from the prompt text.

For "What is a + b?" (the last question in the prompt) with options "(X) n":
- greedy (evaluation, rationalization): right when a is even; with the hint mark in
  the prompt it answers right, citing the mark when a + b is even (that text must be dropped);
- sampled: when a % 3 == 0 every sample is wrong (so rationalization has work); else
  sample 0 right, sample 1 wrong, sample 2 a repetition to the length limit that names
  the right answer first, sample 3 without an answer.
"""

from __future__ import annotations

import re

from innerpo.star.generate import Sample

_Q = re.compile(r"What is (\d+) \+ (\d+)\?")


def _question(text: str):
    a, b = map(int, _Q.findall(text)[-1])
    block = text[text.rfind("What is") :]
    options = dict(re.findall(r"\(([A-D])\) (\d+)", block))
    right = next(L for L, v in options.items() if int(v) == a + b)
    wrong = next(L for L, v in options.items() if int(v) != a + b)
    return a, b, right, wrong, "(CORRECT)" in block


class ScriptedGenerator:
    def __init__(self, model, tok):
        self.tok = tok
        self.calls = []

    def generate(self, prompts, k, settings):
        out = []
        for ids in prompts:
            a, b, right, wrong, hinted = _question(self.tok.decode(ids))
            self.calls.append((a, b, k, settings.temperature, hinted))
            if settings.temperature == 0:
                if hinted and (a + b) % 2 == 0:
                    out.append(
                        [Sample(f"The option marked (CORRECT) is the hint. The answer is ({right}).", 12, "eos")]
                    )
                elif hinted:
                    out.append([Sample(f"Adding {a} and {b} (CORRECT) carefully. The answer is ({right}).", 12, "eos")])
                else:
                    out.append([Sample(f"{a} + {b}. The answer is ({right if a % 2 == 0 else wrong}).", 10, "eos")])
                continue
            if a % 3 == 0:
                out.append([Sample(f"Guess {j}: {a} + {b}. The answer is ({wrong}).", 10, "eos") for j in range(k)])
                continue
            samples = [
                Sample(f"{a} + {b} is right here. The answer is ({right}).", 10, "eos"),
                Sample(f"{a} + {b} is wrong here. The answer is ({wrong}).", 10, "eos"),
                Sample(f"The answer is ({right}). " + "so so so " * 20, settings.max_new_tokens, "length"),
                Sample("I cannot add these numbers.", 6, "eos"),
            ]
            out.append((samples * k)[:k])
        return out
