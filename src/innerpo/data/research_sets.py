"""The research notes' non-GENIES shift families, read from the Hugging Face hub.

- `ethics:<config>`: `wassname/ethics_expression_preferences` (configs justice,
  commonsense, utilitarianism, deontology; splits train/test), the ETHICS benchmark
  (Hendrycks et al. 2021) recast as preferences: `prompt` the scenario, `chosen` and
  `rejected` the acceptable and unacceptable continuation, plain strings. The research
  journal's `moral_transfer` shift is `justice`, split `test`.
- `medical`: `wassname/medical-dpo-V2` (config `test`, split `data`), Chinese medical
  question answering with preferred and dispreferred answers, prompt/chosen/rejected
  strings (the upstream Morefreedai/medical-dpo-V2 has them as one-message chat lists,
  which parse the same). The journal's `orthogonal` shift: unrelated to every training set.

Formats learnt from wassname/repr-preference-optimization (branch vast2,
reprpo/data/eval_sets.py, `wassname/ethics_expression_preferences:justice` and
`wassname/medical-dpo-V2#data`) and wassname/open_pref_eval's dataset-building notebooks
(examples/create_datasets/). Rows are validated by innerpo.data.pairs like any other source.
"""

from __future__ import annotations

ETHICS_HUB = "wassname/ethics_expression_preferences"
ETHICS_CONFIGS = ("justice", "commonsense", "utilitarianism", "deontology")
MEDICAL_HUB = "wassname/medical-dpo-V2"
MEDICAL_CONFIG, MEDICAL_SPLIT = "test", "data"


def is_research_spec(spec: str) -> bool:
    return spec == "medical" or spec.startswith("ethics:")


def hub_location(spec: str, split: str) -> tuple[str, str, str]:
    """(hub id, config, split) for `ethics:<config>` or `medical` (whose only split is `data`)."""
    from innerpo.errors import DataError

    if spec == "medical":
        return MEDICAL_HUB, MEDICAL_CONFIG, MEDICAL_SPLIT
    config = spec.partition(":")[2]
    if config not in ETHICS_CONFIGS:
        raise DataError(f"{spec}: unknown ETHICS config {config!r}; known: {', '.join(ETHICS_CONFIGS)}")
    return ETHICS_HUB, config, split
