"""The advisor: `advise(answers) -> Plan` (advisor/advice/advise.py), pure and torch-free. One module per job, each
importing only the ones listed above it:

- rows.py          the source document's tables as cited: rule rows, Reason/Alternative builders, method and adaptation names
- hardware.py      Hw: the user's GPUs, the margin kept free, §6's "personal GPU", the precision per adaptation
- fitting.py       each stage with the knob set and micro-batch that fit; the search over adaptations (QUALITY_ORDER, COST_ORDER)
- summary.py       a plan's EstimateSummary (peak, margin, paged states) and §5's rule-of-thumb figure with its note
- context.py       Context: the answers with the model spec, GPUs and sequence length they name
- timecost.py      a candidate's predicted hours and dollars, the plan's TimeSummary, the wizard's time words
- decision.py      what to train (§6): decide_method and its Decision
- sizing.py        the order adaptations are tried in (fit_order) and the reasons for the adaptation, knobs and hyperparameters
- nothing_fits.py  the warnings when nothing fits, with what would fit instead
- advise.py        advise(): the decision, the search and the reasons put together into a Plan

Every sentence the advice says comes from rules/messages.toml (advisor/messages.py) and is kept in English and
Korean: the plan reads the same whatever the reader's language, and the renderers pick one.

Nothing is imported here, so a caller that needs one piece (the wizard's what-ifs: summary.py) loads only that piece.
"""
