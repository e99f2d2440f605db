"""What runs next to the user's script on any target (standard library only).

This package is put on the ``PYTHONPATH`` of whatever interpreter runs the user's script, so it
must never import anything outside the standard library (a test enforces it).
"""
