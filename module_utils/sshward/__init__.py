"""sshward core: pure standard-library logic shared by every front end.

This package runs on the controller (imported as ``sshward``) and on target
hosts (shipped by Ansible as ``ansible.module_utils.sshward``). Keep it
standard-library only, Python 3.9 compatible, and use relative imports.
"""

__version__ = "0.1.0"
