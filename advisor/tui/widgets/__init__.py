"""Widgets of the wizard: one per question declaration (questions.py), the memory bar, the step bar."""
