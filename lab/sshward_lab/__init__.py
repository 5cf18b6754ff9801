"""The sshward test lab: Debian containers with systemd and a real sshd.

Standard library only, so it can bootstrap a machine before any virtualenv exists.
"""


class LabError(Exception):
    """A problem the user can fix; the CLI prints it as one line, without a traceback."""
