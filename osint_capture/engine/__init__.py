"""The capture engine: Chromium, the network recorder, the page steps and the WARC writer.

Nothing here knows about cases or custody; it captures a URL into a folder and says what
it found. The lawful-access rules are handed in (:mod:`osint_capture.lawful`).
"""
