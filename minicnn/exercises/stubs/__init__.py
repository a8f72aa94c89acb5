"""The student files ``python -m minicnn.exercises start NAME`` copies: forward written, backward to do."""
