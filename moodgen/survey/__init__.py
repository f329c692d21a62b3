"""The listening-test kit: `python -m moodgen.survey make|score`.

`make` turns generated pieces into an anonymised questionnaire and a separate answer key;
`score` marks the listeners' answers against the key (accuracy, confusion, Fleiss' kappa).
"""
