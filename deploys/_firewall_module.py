"""The sshward_firewall module's pure helpers, for the pyinfra rate-limit operation.

``sshd_ports``, ``build_policy``, ``check_ports``, ``limited_class``, ``saved_name``,
``render_unit`` and the saved-file names live in library/sshward_firewall.py, not yet in the
core (sshward.firewall). Rather than copy them (two renderers of the boot unit would drift), the
module file is loaded here the way tests/unit/test_sshward_firewall_module.py does: with
``ansible.module_utils.sshward`` pointing at the installed core. Needs ansible-core on the
the repository's library/ next to deploys/. The module's Ansible imports (AnsibleModule, to_native)
are stubbed while it loads: only its pure helpers are used, and importing ansible.module_utils.basic
under pyinfra's gevent makes a stray getaddrinfo call that prints a traceback.
TODO: drop this file once those helpers move to sshward.firewall.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import sshward
from sshward import firewall

LIBRARY = Path(__file__).resolve().parent.parent / "library" / "sshward_firewall.py"


def load() -> ModuleType:
    name = "sshward_deploys_firewall_module"
    if name in sys.modules:
        return sys.modules[name]
    basic = ModuleType("ansible.module_utils.basic")
    basic.AnsibleModule = object  # type: ignore[attr-defined]
    converters = ModuleType("ansible.module_utils.common.text.converters")
    converters.to_native = str  # type: ignore[attr-defined]
    stubs = {
        "ansible.module_utils.basic": basic,
        "ansible.module_utils.common.text.converters": converters,
        "ansible.module_utils.sshward": sshward,
        "ansible.module_utils.sshward.firewall": firewall,
    }
    saved = {k: sys.modules.get(k) for k in stubs}
    sys.modules.update(stubs)
    try:
        spec = importlib.util.spec_from_file_location(name, LIBRARY)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {LIBRARY}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        for key, previous in saved.items():
            if previous is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = previous
    sys.modules[name] = module
    return module
