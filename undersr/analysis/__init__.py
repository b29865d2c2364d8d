"""Dataset analysis and evaluation tools: corruptions, the degradation classifier, ΔE/entropy and reports.

Plain modules (not scanned by BasicSR's registries):

* :mod:`undersr.analysis.corruptions`: the 15 ImageNet-C corruptions at severities 1–5;
* :mod:`undersr.analysis.classifier`: a small CNN that tells the corruption type of a patch;
* :mod:`undersr.analysis.metrics`: the paper's §4.3 measures, entropy of predicted types and CIEDE2000 ΔE;
* :mod:`undersr.analysis.report`: ``undersr analyze`` (tables, plots and image grids of generated datasets);
* :mod:`undersr.analysis.compare`: ``undersr compare`` (tables of test results like the paper's Tables 1–2).
"""
