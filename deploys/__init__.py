"""pyinfra v3 deploys of sshward: the same jobs as the Ansible roles, computed by the same core.

    pyinfra inventory.py deploys/harden.py          # run as a deploy file
    pyinfra inventory.py deploys/lockdown.py
    from deploys import harden; harden.harden()     # or inside your own deploy
    from deploys import lockdown; lockdown.lockdown()

``deploys.facts`` reads the host (effective sshd config, OpenSSH version, ``ssh -Q`` lists,
sshd config files, live firewall rules); ``deploys.operations`` turns them into commands with
``sshward.policy``, ``sshward.sshd_config``, ``sshward.guards``, ``sshward.firewall`` and
``sshward.revert``; ``deploys.harden`` composes them with the role variables as data keys, and
``deploys.notify`` adds the ssh_notify role's hook. ``deploys.lockdown_operations`` runs
``sshward.lockdown`` on the host through ``deploys.hostcore``; ``deploys.lockdown`` composes the
incident lockdown with the ssh_lockdown variables.
"""
