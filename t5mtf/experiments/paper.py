"""The paper's numbers and findings that the tiny-scale tables are compared with.

Only what could be checked against a copy of the paper is written here, with where it was read.
Tables not listed have no recorded numbers (no copy of them was reachable offline); the runner
says so next to the table instead of guessing.
"""

# Table 1 (§3.1.5), read from the paper's page 12 (arXiv:1910.10683 v3/JMLR; a copy at
# https://wenku.csdn.net/doc/3bi3qcy9d5).
NUMBERS = {
    1: {
        "Baseline average": {"GLUE": 83.28, "CNNDM": 19.24, "SQuAD": 80.88, "SGLUE": 71.36,
                             "EnDe": 26.98, "EnFr": 39.82, "EnRo": 27.65},
        "No pre-training": {"GLUE": 66.22, "CNNDM": 17.60, "SQuAD": 50.31, "SGLUE": 53.04,
                            "EnDe": 25.86, "EnFr": 39.77, "EnRo": 24.04},
    },
}
BASELINE_STD = {"GLUE": 0.235, "CNNDM": 0.065, "SQuAD": 0.343, "SGLUE": 0.416, "EnDe": 0.112,
                "EnFr": 0.090, "EnRo": 0.108}  # Table 1, 10 runs of the baseline.

# Findings stated in the text, as "row is below/above the table's baseline row on average".
# Table 2 (§3.2.4): the encoder-decoder with the denoising objective did best; every other
# architecture/objective pair scored lower (restated by Wang et al. 2022, arXiv:2204.05832:
# "encoder-decoder (ED) models outperform decoder-only LLMs for transfer learning").
FINDINGS = {
    2: {"default": "below", "source": "§3.2.4: the encoder-decoder with denoising performed best"},
}


def expected_direction(table, row, baseline_row):
  """'below' / 'above' the baseline in the paper, or None when not recorded."""
  numbers = NUMBERS.get(table, {})
  if row in numbers and baseline_row in numbers:
    cols = numbers[row].keys() & numbers[baseline_row].keys()
    diff = sum(numbers[row][c] - numbers[baseline_row][c] for c in cols)
    return "below" if diff < 0 else "above"
  finding = FINDINGS.get(table)
  if finding and row != baseline_row:
    return finding.get(row, finding["default"])
  return None
