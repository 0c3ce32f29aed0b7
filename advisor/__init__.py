"""advisor: how to fine-tune or align a language model, and whether it fits.

Importing the package is light on purpose: the estimator path never loads torch or textual.
"""

__version__ = "0.1.0"
