"""The pieces of benchmarks/vs_trl.py (innerpo's DPO step against TRL's DPOTrainer).

  shared           what every configuration holds equal: settings, pairs, batch order, LoRA init
  measure          what a worker measures about itself (step times, RSS peaks, batch fingerprints) and how it reports
  workers_trl      the TRL DPOTrainer worker
  workers_innerpo  innerpo's workers: the DPO / InnerDPO step, naive forward+backward, evaluation, the GEMM floor
  orchestrate      the parent: a private cache, one subprocess per configuration, the alternating schedule
  summary          medians over repeats, per configuration
  report           the printed tables, sections and PASS/FAIL targets

The modules are imported with benchmarks/ on sys.path (as when vs_trl.py runs as a script), the
way they import benchmarks/roofline.py and benchmarks/eval_long.py.
"""
