"""osint-capture: capture public posts as court-ready evidence.

The capture engine and the command line. Library entry point:
:func:`osint_capture.capture.capture_post`.
"""

__all__: list[str] = []
