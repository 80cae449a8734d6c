"""Which shifts the named suites are made of (data only; innerpo.eval.suites builds them).

GENIES_PAIRS: every source → target pair of the GENIES repository's shift list
(Joshuaclymer/GENIES, `distribution_shifts/all.json`, commit 31306c7; the category is the
file under distribution_shifts/{extreme,probing}/ that lists it) whose two distributions
are in the shared data copy (../shared/data/genies). Each becomes the suite
`genies-<source>-to-<target>` with shifts `in_domain` (the source's test split) and the
category (the target's test split); `genies-from-<source>` holds a source with all its
targets. The pairs whose distributions are missing here (arc, raven, us_history, shp,
spanish_*, crt_*, ...) are left out: with the hub reachable they would load, but no local
data supports them.

RESEARCH_FAMILIES: the research journal's evaluation (wassname/repr-preference-optimization,
branch vast2, reprpo/data/eval_sets.py): the training distribution, its GENIES targets,
`moral_transfer` (ETHICS justice) and `orthogonal` (medical), for the training sources
that the local data supports. The last two come from the hub (innerpo.data.research_sets).
"""

from __future__ import annotations

GENIES_PAIRS: tuple[tuple[str, str, str], ...] = (
    ("alpaca_easy", "alpaca_hard", "difficulty"),
    ("math_easy", "math_hard", "difficulty"),
    ("code_easy", "code_hard", "difficulty"),
    ("alpaca_mmlu", "ranking_logic", "pretraining_similarity"),
    ("math", "change_my_view", "skill"),
    ("alpaca_low_quality", "alpaca_high_quality", "quality"),
    ("alpaca_mmlu", "truthful_qa", "unwanted_personas"),
    ("alpaca_mmlu", "survival_influence", "unwanted_personas"),
    ("alpaca_mmlu", "reward_seeking", "unwanted_personas"),
    ("alpaca_mmlu", "sycophancy_mimicry", "unwanted_personas"),
    ("alpaca_short", "alpaca_long", "spurious_cues"),
    ("alpaca_chat", "illegal_dont_help", "spurious_cues"),
    ("alpaca_mmlu", "wrong_arc", "spurious_cues"),
)

MORAL_TRANSFER = "ethics:justice"
ORTHOGONAL = "medical"
# Training sources of the journal's experiments that the local GENIES copy has.
RESEARCH_SOURCES = ("alpaca_easy", "math_easy", "code_easy", "math", "alpaca_mmlu", "alpaca_low_quality")
