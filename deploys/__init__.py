"""pyinfra v3 deploys of sshward: the same jobs as the Ansible roles, computed by the same core.

    pyinfra inventory.py deploys/harden.py          # run as a deploy file
    from deploys import harden; harden.harden()     # or inside your own deploy

``deploys.facts`` reads the host (effective sshd config, OpenSSH version, ``ssh -Q`` lists,
sshd config files, live firewall rules); ``deploys.operations`` turns them into commands with
``sshward.policy``, ``sshward.sshd_config``, ``sshward.guards``, ``sshward.firewall`` and
``sshward.revert``; ``deploys.harden`` composes them with the role variables as data keys.
"""
