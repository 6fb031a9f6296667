"""Published accuracies of the 10 SentEval probing tasks, drawn in the probing plots beside this run's own
majority baseline: Conneau, Kruszewski, Lample, Barrault and Baroni (2018), "What you can cram into a single $&!#*
vector: Probing sentence embeddings for linguistic properties", ACL 2018, Table 2 (test accuracy, %, of an MLP
probe; the copy in the thesis's repository, samsucik/knowledge-distil-bert @ e6fe56d4, papers/Conneau-et-al-2018.pdf,
page 6). The thesis drew the same three lines (its experiments/analysis/plotting_utils.py, `probing_baselines`).

- `majority`: the row "Majority vote";
- `human`: the row "Hum. Eval.";
- `best`: the best of the paper's trained encoders (BiLSTM-last, BiLSTM-max and GatedConvNet, each trained on 7
  tasks), per probing task; the baseline representations (Length, NB-tfidf, BoV-fastText) are not encoders and are
  left out, as in the thesis. The thesis's code has 99.3 for SentLen; the table's best is 99.4 (GatedConvNet
  AutoEncoder).
"""

from __future__ import annotations

from typing import NamedTuple

CITATION = "Conneau et al. (2018), Table 2"


class Published(NamedTuple):
    """Published test accuracies (fractions) of one probing task."""

    majority: float
    human: float
    best: float
    best_model: str  # which encoder and training task reached `best`


#: kdprobe's probing-task names (SentEval's file names) -> Table 2's published accuracies, as fractions.
CONNEAU_2018: dict[str, Published] = {
    "sentence_length": Published(0.200, 1.000, 0.994, "GatedConvNet AutoEncoder"),
    "word_content": Published(0.005, 1.000, 0.888, "BiLSTM-max untrained"),
    "tree_depth": Published(0.179, 0.840, 0.638, "BiLSTM-max Seq2Tree"),
    "top_constituents": Published(0.050, 0.840, 0.896, "BiLSTM-max Seq2Tree"),
    "bigram_shift": Published(0.500, 0.980, 0.836, "GatedConvNet Seq2Tree"),
    "past_present": Published(0.500, 0.850, 0.915, "GatedConvNet Seq2Tree"),
    "subj_number": Published(0.500, 0.880, 0.951, "BiLSTM-max Seq2Tree"),
    "obj_number": Published(0.500, 0.865, 0.951, "BiLSTM-max Seq2Tree"),
    "odd_man_out": Published(0.500, 0.812, 0.736, "BiLSTM-max SkipThought"),
    "coordination_inversion": Published(0.500, 0.850, 0.762, "BiLSTM-max NMT En-De"),
}
#: How each published line is drawn: (attribute, legend label, colour, line style).
LINES = (
    ("majority", f"majority class, published ({CITATION})", "#8c564b", (0, (1, 2))),
    ("human", f"human performance ({CITATION})", "#17becf", "--"),
    ("best", f"best model of {CITATION}", "#b22222", "-."),
)
