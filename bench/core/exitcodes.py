"""Exit codes: one meaning each, so CI can tell a broken run from a slow release."""

OK = 0
REGRESSION = 1  # `bench compare`: the candidate is worse
USAGE = 2  # bad options or input files
THRESHOLDS_FAILED = 3  # `bench run`: an SLO threshold from the thresholds file was not met
TARGET_UNREACHABLE = 10  # no create call was ever answered
PROTOCOL_ERRORS = 11  # too many journeys ended in protocol errors
LEAKED_SESSIONS = 12  # sessions were left alive after the clean-up sweep
INVARIANT_BROKEN = 13  # outcomes do not add up to journeys started
NO_JOURNEYS = 14  # the run ended before any journey started
WORKER_LOST = 15  # a worker vanished mid-run; its unshipped data is missing
LOCUST_FAILED = 16  # `bench run`: Locust ended without a harness verdict (crash, kill, watchdog)
NO_READY = 17  # journeys ran but none reached ready (every create refused, say): nothing measured
REFUSED = 18  # the provider refused the key or to create sessions (401 / 402 / 403): stopped early
# `bench run` interrupted by signal N exits 128 + N (130 SIGINT, 143 SIGTERM), as shells do.
