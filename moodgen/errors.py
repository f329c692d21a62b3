"""One exception type for every mistake a user can fix: its message is one line naming the fix."""


class MoodgenError(Exception):
    """A user-fixable problem (bad path, missing data, unknown option).

    Entry points print ``moodgen: error: <message>`` and exit with status 2 instead of a traceback.
    """
