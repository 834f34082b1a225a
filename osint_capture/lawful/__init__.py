"""The lawful public-access rules: addresses, URL and page rules, robots.txt.

Each rule is enforced here, in one place, and recorded in the manifest; the engine only
asks (the request gate, the page inspector, the robots policy). docs/LAWFUL_USE.md
explains them in plain words.
"""
