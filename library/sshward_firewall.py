#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: rate-limit, restrict (during an incident) or ban new SSH connections in sshward's own chains."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sshward_firewall
short_description: Rate-limit, restrict or ban new SSH connections with iptables or nftables, in sshward's own chains
description:
  - Loads sshward's SSH firewall rules for IPv4 and IPv6. C(mode=ratelimit) limits new connections per
    source address (trusted networks get their own, larger allowance; allowlisted sources are never
    limited). C(mode=restrict) (used by the incident lockdown) drops every new SSH connection except from
    O(admin_networks) and loopback. C(mode=ban) drops every new SSH connection from O(addresses), lastingly
    (persisted, no fail2ban needed) and until removed with O(state=absent).
  - Only sshward's own objects are touched. iptables, chains C(SSHWARD-*) plus one jump from C(INPUT) per mode,
    loaded with C(iptables-restore --noflush), once per address family. nftables, its own C(table inet sshward)
    (C(sshward_restrict) for restrict mode, C(sshward_ban) for ban mode), replaced in one C(nft -f) transaction.
    The C(nat) table, docker's rules, fail2ban's chains and the host's own rules are never touched, and sshward
    never accepts, so it cannot open what the host's firewall closes. Established sessions never enter sshward's chains.
  - Every load is checked first (C(iptables-restore --test), C(nft -c)); a refused script loads nothing. After
    loading, the live ruleset is read again and must match the policy.
  - In check mode nothing is loaded or written; the diff shows sshward's rules before and after, the exact
    scripts that would be loaded, and the persistence files.
  - B(ufw and firewalld.) When either is active the module refuses with C(backend=auto) or C(backend=iptables)
    (they own the INPUT chain and rewrite it on reload). With an explicit C(backend=nftables) it loads sshward's
    own nft table beside them (they never touch it) and warns. There is no deeper integration.
  - B(Persistence.) With O(persistent=true) the loaded scripts are saved under O(config_dir) and a oneshot
    systemd unit C(sshward-firewall.service) (enabled, not started) loads them at boot, ordered after
    C(netfilter-persistent.service) and C(nftables.service) (whose own loads flush the table or ruleset they
    restore) and before C(network-pre.target) and C(ssh.service). sshward does not add its rules to
    C(/etc/iptables/rules.v4) or C(/etc/nftables.conf), those files are the admin's, saved whole (docker and
    fail2ban rules included) and C(nftables.conf) starts with C(flush ruleset). The unit loads only what sshward
    owns, so it works the same with or without those services. One unit serves both modes; it is rewritten
    from the files present and removed with the last of them.
  - C(state=absent) removes the mode's jumps, chains or table (from every backend whose tools exist when
    C(backend=auto)), its saved files, and the unit when no other mode needs it.
version_added: "0.1.0"
author: sshward developers
options:
  mode:
    description:
      - C(ratelimit) limits new SSH connections per source.
      - C(restrict) allows them only from O(admin_networks).
      - C(ban) drops them from O(addresses). Each run adds to the bans in place (the live ruleset is the list);
        O(state=absent) with O(addresses) lifts exactly those, without them every ban (chain, table, files).
        iptables, chain C(SSHWARD-BAN) of plain DROP rules (no ipset needed); nftables, C(table inet sshward_ban)
        with one interval set per family.
    type: str
    choices: [ratelimit, restrict, ban]
    default: ratelimit
  state:
    description: C(present) loads the rules (and persists them), C(absent) removes every trace of O(mode).
    type: str
    choices: [present, absent]
    default: present
  backend:
    description:
      - C(auto) picks nftables when the host manages its firewall natively with nft (C(nftables.service) enabled,
        or nft tables of its own) or has no iptables, iptables (legacy or nft variant) otherwise.
      - The module installs nothing; the ssh_ratelimit role installs the nftables package when asked for it.
    type: str
    choices: [auto, iptables, nftables]
    default: auto
  ports:
    description:
      - TCP ports to protect. Default, the ports sshd listens on (C(port) and C(listenaddress) lines of C(sshd -T)).
      - A port sshd does not listen on is refused.
    type: list
    elements: int
  trusted_networks:
    description: Networks (CIDR) that get O(trusted_seconds)/O(trusted_hitcount) instead of O(seconds)/O(hitcount).
    type: list
    elements: str
    default: []
  trusted_seconds:
    description: Window, in seconds, for trusted networks.
    type: int
    default: 60
  trusted_hitcount:
    description: The O(trusted_hitcount)-th new connection from one trusted source within the window is dropped.
    type: int
    default: 10
  seconds:
    description:
      - Window, in seconds, for everyone else. Every dropped attempt restarts the window, so a source that keeps
        trying stays blocked until it has been silent for this long.
    type: int
    default: 60
  hitcount:
    description: The O(hitcount)-th new connection from one source within the window is dropped (2..20).
    type: int
    default: 4
  allowlist:
    description: Sources (CIDR) that are never rate limited.
    type: list
    elements: str
    default: []
  admin_networks:
    description: C(mode=restrict) only, the networks still allowed to open new SSH connections.
    type: list
    elements: str
    default: []
  addresses:
    description:
      - C(mode=ban) only, the addresses or networks (IPv4 and IPv6) to ban, or with O(state=absent) to lift.
      - An address inside or overlapping O(protect_networks), O(admin_addresses) or O(connecting_address), and
        loopback, is never banned (left out with a warning and returned in RV(not_banned)).
    type: list
    elements: str
    default: []
  protect_networks:
    description: C(mode=ban) only, networks never banned (the admin's and trusted networks).
    type: list
    elements: str
    default: []
  allow_loopback:
    description: C(mode=restrict) only, keep allowing new SSH connections over loopback.
    type: bool
    default: true
  connecting_address:
    description:
      - The address Ansible connects from (first field of C(SSH_CONNECTION)). When it would be rate limited, or
        dropped by restrict mode, the module warns; it never changes the policy by itself.
    type: str
  admin_addresses:
    description:
      - Addresses never limited because the admin works from them (the ssh_ratelimit role passes the address
        the play connects from). Added to O(allowlist) and recorded in O(config_dir) as
        C(<mode>.admin-addresses), so the verify suite expects them; removed with O(state=absent).
    type: list
    elements: str
    default: []
  persistent:
    description: Save the rules under O(config_dir) and load them at boot with C(sshward-firewall.service).
    type: bool
    default: true
  config_dir:
    description: Where the saved scripts live.
    type: path
    default: /etc/sshward/firewall
  sshd_path:
    description: The sshd binary whose C(sshd -T) gives the listening ports.
    type: path
    default: /usr/sbin/sshd
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
notes:
  - With iptables, a host without IPv6 support in the kernel (no C(ip6tables-save)) gets IPv4 rules only and a warning.
seealso:
  - name: xt_recent
    description: The iptables recent match the rate limit is built on.
    link: https://ipset.netfilter.org/iptables-extensions.man.html#lbBW
"""

EXAMPLES = r"""
- name: Rate-limit new SSH connections, office networks get a larger allowance
  sshward_firewall:
    trusted_networks: [192.0.2.0/24, 2001:db8:42::/48]
    trusted_seconds: 60
    trusted_hitcount: 10
    seconds: 60
    hitcount: 4
    allowlist: [198.51.100.7]
    connecting_address: "{{ ansible_env.SSH_CONNECTION.split()[0] }}"

- name: Incident lockdown, only the admins' addresses may open new SSH connections
  sshward_firewall:
    mode: restrict
    admin_networks: [203.0.113.7/32]
    persistent: false

- name: Ban an intruder lastingly (never the admin's own networks)
  sshward_firewall:
    mode: ban
    addresses: [198.51.100.23, 2001:db8:bad::/64]
    protect_networks: [203.0.113.0/24]
    connecting_address: "{{ ansible_env.SSH_CONNECTION.split()[0] }}"

- name: Lift one ban, keep the others
  sshward_firewall:
    mode: ban
    state: absent
    addresses: [198.51.100.23]

- name: Remove the rate limit, its saved files and the unit
  sshward_firewall:
    state: absent
"""

RETURN = r"""
backend:
  description: The backend used (for C(state=absent) with C(backend=auto), the ones the rules were removed from).
  returned: always
  type: str
  sample: iptables
ports:
  description: The protected ports.
  returned: when state is present
  type: list
  elements: int
  sample: [22]
scripts:
  description: The scripts loaded (in check mode, that would be loaded), with the command each is fed to.
  returned: always
  type: list
  elements: dict
  sample: [{command: "iptables-restore --noflush --wait=10", family: ipv4, script: "*filter\n...COMMIT\n"}]
files:
  description: Persistence files written or removed (in check mode, that would be).
  returned: always
  type: list
  elements: str
  sample: [/etc/sshward/firewall/ratelimit.ipv4.rules, /etc/systemd/system/sshward-firewall.service]
banned:
  description: C(mode=ban), the networks banned after the task (in check mode, that would be).
  returned: when mode is ban
  type: list
  elements: str
  sample: [198.51.100.23/32, 2001:db8:bad::/64]
not_banned:
  description: C(mode=ban), the requested addresses left out because they are protected or loopback.
  returned: when mode is ban
  type: list
  elements: str
  sample: [203.0.113.7/32]
warnings_policy:
  description: Warnings from the policy check (host bits set in a network...), also emitted as warnings.
  returned: always
  type: list
  elements: str
  sample: ["trusted_networks: '10.1.2.3/8' has host bits set; using 10.0.0.0/8"]
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.sshward.firewall import (
    MODES,
    SAVED,
    UNIT_BINARIES,
    UNIT_DIR,
    UNIT_NAME,
    FirewallError,
    banned_from_state,
    build_policy,
    check_ports,
    conflict_message,
    detect_backend,
    diff,
    limited_class,
    merge_bans,
    plan,
    plan_removal,
    render_unit,
    saved_name,
    sshd_ports,
    state_commands,
)

C_LOCALE = {"LC_ALL": "C"}


# ---------------------------------------------------------------------------------------------
# The module


class FirewallModule:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.warnings = []
        self.files = []
        self.diffs = []

    def fail(self, msg, **kw):
        self.module.fail_json(msg=msg, **kw)

    def run(self, argv, data=None):
        return self.module.run_command(list(argv), data=data, binary_data=True, environ_update=C_LOCALE)

    def bin(self, name):
        return self.module.get_bin_path(name, opt_dirs=["/usr/sbin", "/sbin"])

    # -- facts ------------------------------------------------------------------------------
    def listening_ports(self):
        sshd = self.params["sshd_path"]
        if not os.path.exists(sshd):
            return None
        # sshd -T wants its privilege separation directory, as sshd -t does.
        if not os.path.isdir("/run/sshd") and not self.module.check_mode:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        rc, out, err = self.run([sshd, "-T"])
        if rc != 0:
            self.fail(f"'{sshd} -T' failed, cannot tell which ports sshd listens on: {to_native(err or out).strip()}")
        return sshd_ports(out)

    def available(self):
        return {
            "iptables": bool(self.bin("iptables-restore") and self.bin("iptables-save")),
            "nftables": bool(self.bin("nft")),
        }

    def choose_backend(self):
        wanted = self.params["backend"]
        avail = self.available()
        if wanted != "auto":
            if not avail[wanted]:
                pkg = "nftables" if wanted == "nftables" else "iptables"
                self.fail(
                    f"backend: {wanted} was asked for but its tools are missing; install the {pkg} package "
                    "(the ssh_ratelimit role does it for nftables) or use backend=auto"
                )
            return wanted
        version = None
        ipt = self.bin("iptables")
        if ipt:
            rc, out, err = self.run([ipt, "-V"])
            version = out if rc == 0 else None
        ruleset, enabled = None, False
        if avail["nftables"]:
            rc, out, _ = self.run([self.bin("nft"), "list", "ruleset"])
            ruleset = out if rc == 0 else None
            systemctl = self.bin("systemctl")
            if systemctl:
                rc, out, _ = self.run([systemctl, "is-enabled", "nftables.service"])
                enabled = out.strip() == "enabled"
        try:
            return detect_backend(version, avail["nftables"], ruleset, enabled)
        except FirewallError as exc:
            self.fail(str(exc))

    def conflicts(self, backend):
        ufw_status = firewalld = None
        ufw = self.bin("ufw")
        if ufw:
            rc, out, _ = self.run([ufw, "status"])
            ufw_status = out
        systemctl = self.bin("systemctl")
        if systemctl:
            rc, out, _ = self.run([systemctl, "is-active", "firewalld.service"])
            firewalld = out
        message = conflict_message(ufw_status, firewalld, setting="backend")
        if not message:
            return
        if self.params["backend"] == "nftables" and backend == "nftables":
            self.warnings.append("loading sshward's own nft table beside ufw/firewalld, whose rules still apply too")
            return
        self.fail(message)

    def current(self, backend, mode):
        """Outputs of the state commands, keyed like plan()'s keyword arguments."""
        nft_version = None
        if backend == "nftables":
            rc, out, _ = self.run([self.bin("nft"), "-v"])
            nft_version = out
        out_args = {}
        for key, argv in state_commands(backend, mode, nft_version).items():
            path = self.bin(argv[0])
            if key == "inet":
                rc, out, err = self.run([path, *argv[1:]])
                # A missing table is an error for nft: it means "no rules of ours".
                out_args["nft_json"] = out if rc == 0 else None
                continue
            name = "iptables_save" if key == "ipv4" else "ip6tables_save"
            if not path:
                if key == "ipv4":
                    self.fail(f"{argv[0]} is missing; install the iptables package or use backend=nftables")
                self.warnings.append("ip6tables-save is missing: IPv6 SSH connections are not rate limited")
                out_args[name] = None
                continue
            rc, out, err = self.run([path, *argv[1:]])
            if rc != 0:
                if key == "ipv6":
                    self.warnings.append(f"ip6tables-save failed ({to_native(err).strip()}): IPv6 is left alone")
                    out_args[name] = None
                    continue
                self.fail(f"{argv[0]} failed: {to_native(err or out).strip()}")
            out_args[name] = out
        return out_args

    def plans(self, backend, mode, policy, state_args):
        skip_v6 = backend == "iptables" and state_args.get("ip6tables_save") is None
        args = {k: (v or "") if k != "nft_json" else v for k, v in state_args.items()}
        try:
            result = plan_removal(mode, backend, **args) if policy is None else plan(policy, backend, **args)
        except FirewallError as exc:
            self.fail(str(exc))
        return [p for p in result if not (skip_v6 and p.family == "ipv6")]

    # -- loading ----------------------------------------------------------------------------
    def load(self, plans):
        todo = [p for p in plans if p.changed]
        for p in todo:  # check every script before loading any
            rc, out, err = self.run(self.resolve(p.check_command), data=p.script)
            if rc != 0:
                self.fail(
                    f"{p.check_command[0]} refused the {p.family} script, nothing was loaded: "
                    f"{to_native(err or out).strip()}",
                    script=p.script,
                )
        if self.module.check_mode:
            return
        for p in todo:
            rc, out, err = self.run(self.resolve(p.command), data=p.script)
            if rc != 0:
                self.fail(f"{p.command[0]} failed for {p.family}: {to_native(err or out).strip()}", script=p.script)

    def resolve(self, argv):
        path = self.bin(argv[0]) or argv[0]
        return [path, *argv[1:]]

    # -- persistence ------------------------------------------------------------------------
    def saved_path(self, mode, backend, family):
        return os.path.join(self.params["config_dir"], saved_name(mode, backend, family))

    def read(self, path):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None
        with os.fdopen(fd, "r") as fh:
            return fh.read()

    def write(self, path, text):
        """Atomically write ``text`` to ``path`` (root only); record the change. Returns True if changed."""
        before = self.read(path)
        if before == text:
            return False
        self.files.append(path)
        self.diffs.append(dict(before_header=path, after_header=path, before=before or "", after=text))
        if self.module.check_mode:
            return True
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):
            os.makedirs(directory, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".sshward-", dir=directory)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        self.module.atomic_move(tmp, path)
        # atomic_move gives a new file the umask's mode: saved rules are root's only, the unit world-readable.
        os.chmod(path, 0o600 if directory == self.params["config_dir"] else 0o644)
        return True

    def remove(self, path):
        before = self.read(path)
        if before is None and not os.path.lexists(path):
            return False
        self.files.append(path)
        self.diffs.append(dict(before_header=path, after_header=path, before=before or "", after=""))
        if not self.module.check_mode:
            os.unlink(path)
        return True

    def sync_unit(self, planned):
        """Rewrite (or remove) the unit from the saved files; ``planned`` maps path -> text or None."""
        entries = []
        bins = {}
        for name in UNIT_BINARIES:
            bins[name] = self.bin(name) or f"/usr/sbin/{name}"
        for mode in MODES:
            for backend, family in SAVED:
                path = self.saved_path(mode, backend, family)
                present = planned[path] is not None if path in planned else os.path.exists(path)
                if present:
                    entries.append((mode, backend, family, path, bins))
        unit = os.path.join(UNIT_DIR, UNIT_NAME)
        systemctl = self.bin("systemctl")
        if entries:
            changed = self.write(unit, render_unit(entries))
            enabled = bool(systemctl) and self.run([systemctl, "is-enabled", UNIT_NAME])[1].strip() == "enabled"
            if systemctl and not enabled:
                self.files.append(f"{UNIT_NAME} (enabled)")
            if systemctl and not self.module.check_mode:
                if changed:
                    self.systemctl(systemctl, "daemon-reload")
                if not enabled:
                    self.systemctl(systemctl, "enable", UNIT_NAME)
        elif os.path.lexists(unit):
            if not self.module.check_mode and systemctl:
                self.systemctl(systemctl, "disable", UNIT_NAME)
            self.remove(unit)
            if not self.module.check_mode and systemctl:
                self.systemctl(systemctl, "daemon-reload")
        if not entries and not self.module.check_mode:
            for directory in (self.params["config_dir"], os.path.dirname(self.params["config_dir"])):
                if os.path.basename(directory) and os.path.isdir(directory) and not os.listdir(directory):
                    os.rmdir(directory)

    def systemctl(self, systemctl, *args):
        rc, out, err = self.run([systemctl, *args])
        if rc != 0:
            self.fail(f"systemctl {' '.join(args)} failed: {to_native(err or out).strip()}")

    # -- main -------------------------------------------------------------------------------
    def main(self):
        params = self.params
        mode, state = params["mode"], params["state"]
        # mode=ban, state=absent with addresses lifts those bans and keeps the others loaded.
        lift = mode == "ban" and state == "absent" and bool(params["addresses"])
        policy = None
        if state == "present" or lift:
            try:
                policy = build_policy(params)
            except FirewallError as exc:
                self.fail(str(exc))
            listening = self.listening_ports()
            if params["ports"]:
                if listening is None:
                    self.warnings.append(f"{params['sshd_path']} not found: ports were not checked against sshd")
                else:
                    try:
                        check_ports(policy.ports, listening)
                    except FirewallError as exc:
                        self.fail(str(exc))
            else:
                if not listening:
                    self.fail(f"ports: sshd ({params['sshd_path']}) was not found or lists no port; set ports")
                try:
                    policy = build_policy(dict(params, ports=listening))
                except FirewallError as exc:
                    self.fail(str(exc))
            self.warnings.extend(policy.warnings)
            if params["connecting_address"]:
                cls = limited_class(policy, params["connecting_address"])
                if cls == "other" or cls == "trusted":
                    hits = policy.hitcount if cls == "other" else policy.trusted_hitcount
                    secs = policy.seconds if cls == "other" else policy.trusted_seconds
                    self.warnings.append(
                        f"connecting_address: {params['connecting_address']} (this Ansible connection) is rate "
                        f"limited as '{cls}' ({hits - 1} new connections per {secs} s); keep SSH multiplexing "
                        "(ControlPersist) on or add it to allowlist"
                    )
                elif cls == "dropped":
                    self.warnings.append(
                        f"connecting_address: {params['connecting_address']} (this Ansible connection) is not in "
                        "admin_networks: new SSH connections from it will be dropped"
                    )

        avail = self.available()
        if state == "present" or lift:
            backend = self.choose_backend()
            self.conflicts(backend)
            backends = [backend]
            # Switching backend: remove this mode's rules from the other one.
            others = [b for b in ("iptables", "nftables") if b != backend and avail[b]]
        elif params["backend"] == "auto":
            backends, others = [b for b in ("iptables", "nftables") if avail[b]], []
        else:
            backends, others = [params["backend"]], []
            if not avail[params["backend"]]:
                backends = []

        currents = {b: self.current(b, mode) for b in backends + others}
        if mode == "ban" and policy is not None:
            policy = self.merged_bans(policy, currents, lift)
        ban_result = {}
        if mode == "ban":
            ban_result = dict(
                banned=[str(n) for n in policy.addresses] if policy else [],
                not_banned=list(policy.skipped) if policy else [],
            )
            if policy is not None and not policy.addresses:
                policy = None  # nothing left to ban: remove the chains / table
        plans = []
        for b in backends:
            plans += self.plans(b, mode, policy, currents[b])
        for b in others:
            plans += self.plans(b, mode, None, currents[b])
        self.load(plans)
        if not self.module.check_mode:
            for b in backends:
                again = self.plans(b, mode, policy, self.current(b, mode))
                wrong = [p.family for p in again if p.changed]
                if wrong:
                    self.fail(
                        f"the live {b} rules for {', '.join(wrong)} do not match the policy after loading",
                        diff=diff(again),
                    )

        # Persistence: saved scripts of this mode (for the chosen backend) and the unit.
        planned = {}
        for b, family in SAVED:
            path = self.saved_path(mode, b, family)
            keep = None
            if policy is not None and params["persistent"] and b == backends[0]:
                fresh = [p for p in plan(policy, b) if p.family == family]
                if fresh and not (b == "iptables" and family == "ipv6" and not any(p.family == "ipv6" for p in plans)):
                    keep = fresh[0].script
            planned[path] = keep
        # The admin addresses allowlisted on top of the policy, kept beside the saved rules so the
        # verify suite can expect them (and removed with them).
        admins_path = os.path.join(params["config_dir"], f"{mode}.admin-addresses")
        admins = sorted(set(params.get("admin_addresses") or []))
        planned_admins = "".join(a + "\n" for a in admins) if state == "present" and admins else None
        if planned_admins is None:
            self.remove(admins_path)
        else:
            self.write(admins_path, planned_admins)
        for path, text in planned.items():
            if text is None:
                self.remove(path)
            else:
                self.write(path, text)
        self.sync_unit(planned)

        changed = bool(self.files) or any(p.changed for p in plans)
        for w in self.warnings:
            self.module.warn(w)
        scripts = [
            dict(command=" ".join(p.command), family=p.family, backend=p.backend, script=p.script)
            for p in plans
            if p.changed
        ]
        loaded = [p for p in plans if p.changed]
        live = diff(loaded)
        for i, p in enumerate(loaded):  # zip(strict=) needs Python 3.10; bullseye has 3.9
            d = live[i]
            d["after"] = d["after"] + "\n# loaded with: " + " ".join(p.command) + "\n" + p.script
        result = dict(
            changed=changed,
            backend=",".join(backends) if backends else "none",
            scripts=scripts,
            files=self.files,
            warnings_policy=list(policy.warnings) if policy else [],
            diff=live + self.diffs,
        )
        if policy is not None:
            result["ports"] = list(policy.ports)
        result.update(ban_result)
        self.module.exit_json(**result)

    def merged_bans(self, policy, currents, lift):
        """The ban list after this run: the bans loaded now (on every backend, so a switch keeps them)
        plus the requested ones, or minus them when lifting."""
        loaded = []
        for b, outputs in currents.items():
            args = {k: (v or "") if k != "nft_json" else v for k, v in outputs.items()}
            try:
                loaded += banned_from_state(b, **args)
            except (FirewallError, ValueError) as exc:
                self.fail(f"cannot read the bans loaded in {b}: {exc}")
        # merge_bans checks the protected networks again: a ban in place that is now protected is dropped.
        merged = merge_bans(policy, loaded, remove=lift)
        self.warnings.extend(w for w in merged.warnings if w not in policy.warnings)
        return merged


def main():
    module = AnsibleModule(
        argument_spec=dict(
            mode=dict(type="str", choices=list(MODES), default="ratelimit"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            backend=dict(type="str", choices=["auto", "iptables", "nftables"], default="auto"),
            ports=dict(type="list", elements="int"),
            trusted_networks=dict(type="list", elements="str", default=[]),
            trusted_seconds=dict(type="int", default=60),
            trusted_hitcount=dict(type="int", default=10),
            seconds=dict(type="int", default=60),
            hitcount=dict(type="int", default=4),
            allowlist=dict(type="list", elements="str", default=[]),
            admin_addresses=dict(type="list", elements="str", default=[]),
            admin_networks=dict(type="list", elements="str", default=[]),
            allow_loopback=dict(type="bool", default=True),
            addresses=dict(type="list", elements="str", default=[]),
            protect_networks=dict(type="list", elements="str", default=[]),
            connecting_address=dict(type="str"),
            persistent=dict(type="bool", default=True),
            config_dir=dict(type="path", default="/etc/sshward/firewall"),
            sshd_path=dict(type="path", default="/usr/sbin/sshd"),
        ),
        supports_check_mode=True,
    )
    FirewallModule(module).main()


if __name__ == "__main__":
    main()
