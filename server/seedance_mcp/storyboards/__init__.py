"""Storyboards: a plan of shots made into one film (the tool is `tools/storyboard.py`)."""
