"""Dataset analysis and evaluation tools: corruptions, the degradation classifier, ΔE/entropy and reports.

Plain modules (not scanned by BasicSR's registries):

* :mod:`undersr.analysis.corruptions`: the 15 ImageNet-C corruptions at severities 1–5;
* :mod:`undersr.analysis.classifier`: a small CNN that tells the corruption type of a patch, or that it is clean;
* :mod:`undersr.analysis.metrics`: the paper's §4.3 measures, entropy of predicted types and CIEDE2000 ΔE, and the
  clean share;
* :mod:`undersr.analysis.evaluation`: the classifier's confusion matrix and per-class accuracy, and the validation
  sets that check the diversity scores (docs/analysis.md);
* :mod:`undersr.analysis.report`: what ``undersr analyze`` writes (tables, plots and image grids of datasets);
* :mod:`undersr.analysis.compare`: what ``undersr compare`` reads and writes (tables like the paper's Tables 1–2).

Their command-line front-ends are in :mod:`undersr.cli`.
"""
