"""Pure logic at the bottom: journey maths, outcomes, ladder, durations, text, errors.

Nothing here imports Locust, opens a socket or touches a file.
"""
