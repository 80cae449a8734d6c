"""`innerpo star` settings: the STaR loop's own (`StarConfig`) and the whole run (`StarRunConfig`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from innerpo.data.config import DataConfig
from innerpo.methods.config import MethodConfig
from innerpo.methods.presets import preset_method, resolve_method_name
from innerpo.models.config import ModelConfig
from innerpo.train.config import TrainingConfig


@dataclass
class StarConfig:
    dataset: str = "synthetic"
    """Questions: `synthetic[:add1|add2|add3]` (built in), an MMLU directory, an MMMLU/MMLU CSV, a CommonsenseQA or GSM8K JSONL (or a directory with `<split>_rand_split.jsonl`), or a hub dataset id."""  # noqa: E501
    subjects: list[str] = field(default_factory=list)
    """MMLU directory: these subjects only (default: all)."""
    language: str = "en"
    """Language of the questions (MMMLU files named like mmlu_YO-NG.csv set it themselves)."""
    train_split: str = "train"
    """Split the training questions come from (MMLU: dev or val; CommonsenseQA/GSM8K: train)."""
    eval_split: str = "test"
    """Split of the held-out questions (CommonsenseQA/GSM8K: dev). A single question file has no splits: num_eval_questions of its questions are held out."""  # noqa: E501
    num_train_questions: int | None = 48
    """Use at most this many training questions (a fixed shuffle by `seed`); None: all."""
    num_eval_questions: int | None = 60
    """Held-out questions scored each iteration (60 keeps a CPU run short; the 95% interval is then about ±12 points); None: all."""  # noqa: E501
    strategy: Literal["sft", "dpo"] | None = None
    """`sft`: train on question → correct rationale (STaR); `dpo`: pairs of a correct and an incorrect rationale, trained with --method.losses (default dpo; `dpo sft` is Iterative RPO). None: sft, or dpo when --star.method is set."""  # noqa: E501
    method: str | None = None
    """Train the pairs with this `innerpo train` preset or alias (hs-none-innerpo, hs-none-prefvec, projgrad, ipo, ...); implies --star.strategy=dpo; --method.* flags adjust the preset's settings."""  # noqa: E501
    iterations: int = 3
    """Outer STaR iterations (generate → filter → train → evaluate)."""
    samples_per_question: int = 4
    """k: rationales sampled per training question."""
    temperature: float = 0.7
    top_p: float = 1.0
    max_new_tokens: int = 40
    """Longest rationale in tokens (enough for the built-in task and CommonsenseQA; raise it for GSM8K)."""
    gen_batch_size: int = 64
    """Most rows (question × sample) decoded together."""
    gen_batch_tokens: int = 32768
    """Most rows × (prompt + max_new_tokens) tokens decoded together."""
    few_shot: int = 3
    """Exemplars in the generation prompt (training examples are zero-shot)."""
    exemplars: str | None = None
    """YAML file of instruction and exemplars replacing the built-in one for the task (see innerpo/star/exemplars/)."""
    p_rationalization: float = 1.0
    """Share of the questions with no correct sample that are re-asked with the gold answer as a hint (a correct rationale is kept, hint removed); which ones is fixed by `seed` and the iteration. 0 turns rationalization off."""  # noqa: E501
    pairs_per_question: int = 1
    """dpo: most (correct, incorrect) pairs per question."""
    reset_each_iteration: bool = True
    """Train each iteration from the base model (STaR); False continues from the last model (its adapter merged; it is also the reference, as in Iterative RPO)."""  # noqa: E501
    steps: int | None = 10
    """Optimizer steps in iteration 1, growing by `step_growth` per iteration (the STaR paper's schedule: 40, ×1.2; 10 keeps a CPU run short); None: --training.epochs over each iteration's data."""  # noqa: E501
    step_growth: float = 1.2
    preload: str | None = None
    """A train.jsonl saved by an earlier run (RUN/iter-1/train.jsonl): iteration 1 trains on it and skips generation."""
    mode: Literal["train", "prompt_eval"] = "train"
    """`prompt_eval`: only measure held-out accuracy of the (base) model for each of `preambles`."""
    preambles: list[str] = field(default_factory=list)
    """prompt_eval: instruction preambles to compare (the empty preamble is always included)."""
    reasoning: Literal["native", "english", "translate"] = "native"
    """Non-English questions: reason in the question's language, in English, or translate to English first."""
    eval_sets: list[str] = field(default_factory=lambda: ["synthetic:add2", "synthetic:add3"])
    """Shifted held-out sets scored every iteration beside `in_domain` (the training set's own held-out split): each a question source as --star.dataset takes (`synthetic:add2`, a GSM8K or MMMLU file, an MMLU directory as `DIR:subject1,subject2`), optionally named as `name=source`. A set equal to --star.dataset is skipped (it is in_domain)."""  # noqa: E501
    eval_seed: int = 0
    """Which held-out questions are drawn (of in_domain and every eval set); the same for every --star.seed, so seeds are scored on the same questions."""  # noqa: E501
    eval_samples: int = 0
    """n: rationales sampled per held-out question (temperature, top_p as for training) for pass@1, pass@k and maj@n; 0: greedy only."""  # noqa: E501
    eval_k: list[int] = field(default_factory=list)
    """k values of pass@k (each 1..eval_samples); empty: k = eval_samples."""
    direct_eval: bool = True
    """Also score held-out multiple-choice questions by option log-likelihood (no generation)."""
    seed: int = 0
    """Training questions (and the synthetic task's), sampling, rationalization, and each iteration's training (LoRA init, batch order: it is the training runs' seed)."""  # noqa: E501

    @property
    def resolved_strategy(self) -> str:
        """`sft` or `dpo`: as set, else dpo when a method is named, else sft."""
        return self.strategy or ("dpo" if self.method else "sft")


@dataclass
class StarRunConfig:
    """Everything `innerpo star` reads: the loop's settings and the training run's (model, data, training, method)."""

    star: StarConfig = field(default_factory=StarConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=lambda: DataConfig(max_length=512, batch_size=8))
    """Tokenization and batches of each iteration's training run (`dataset` is set by the loop)."""
    training: TrainingConfig = field(default_factory=lambda: TrainingConfig(lr=3e-4, eval_every=0))
    method: MethodConfig = field(default_factory=MethodConfig)
    """dpo strategy: the preference loss(es) (any from the registry), or the settings of --star.method's preset; the sft strategy always trains the `sft` loss."""  # noqa: E501
    output_dir: str | None = None
    """Run directory (default outputs/star-<strategy>-<time>); must not already hold a run."""


def with_method(cfg: StarRunConfig, name: str) -> StarRunConfig:
    """`cfg` training its pairs with preset `name` (a preset or an alias): --star.method set to
    the canonical name and --method to the preset's settings (flags parsed after this override them)."""
    canonical = resolve_method_name(name)
    return dataclasses.replace(
        cfg, star=dataclasses.replace(cfg.star, method=canonical), method=preset_method(canonical)
    )
