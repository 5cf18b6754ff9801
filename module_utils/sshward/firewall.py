"""SSH rate-limit and restrict rule sets for iptables-restore and nft, in sshward's own chains.

Everything here is a pure function of a policy and of command outputs the caller collected
(``iptables-save``, ``ip6tables-save``, ``nft -j list table inet sshward``, ``iptables -V``...):
nothing runs a command. A front end (the ``sshward_firewall`` module, the pyinfra operation)
runs the commands, passes their text in, and gets back :class:`Plan` objects: the argv to run,
the script to feed on its standard input, whether anything would change, and a before/after
for the diff.

Ownership rules, so that the host's own firewall, docker's rules and other tools stay intact:

* iptables: only chains named ``SSHWARD-*`` plus one jump from ``INPUT`` per mode, loaded with
  ``iptables-restore --noflush``; only our chains are ever flushed or deleted; the ``nat``
  table is never named (docker's DNS rules live there).
* nftables: only ``table inet sshward`` (rate limit) and ``table inet sshward_restrict``
  (incident restrict mode), each replaced atomically by one ``nft -f`` transaction
  (``add table``; ``delete table``; ``table {...}``), which also works with nft releases that
  predate ``destroy``. ``flush ruleset`` is never used.
* sshward only ever drops or returns: it never accepts, so it can never open what the host's
  firewall closes, and behaves the same whether a later rule or another nft table also votes.
* Only NEW connections to the SSH ports are looked at; established sessions never enter our
  chains.

Rate-limit semantics (iptables, the classic ``recent`` pair): a source gets ``hitcount - 1``
new connections per ``seconds``; the ``hitcount``-th within the window is dropped, and every
dropped attempt refreshes the window, so a source that keeps trying stays blocked until it has
been silent for ``seconds``. nftables reproduces this with a per-source token bucket
(``limit rate over N/window burst N packets`` in a dynamic set, N = hitcount - 1) and a
"blocked" dynamic set with a ``seconds`` timeout refreshed by every dropped attempt. The one
difference: the token bucket refills continuously, so before a source is blocked it may get one
more attempt every ``seconds / N`` instead of none until the window slides.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar, Union

from . import netaddr

__all__ = [
    "BACKENDS",
    "MODES",
    "BanPolicy",
    "FirewallError",
    "IptablesSave",
    "Plan",
    "SAVED",
    "UNIT_BINARIES",
    "UNIT_DIR",
    "UNIT_NAME",
    "RateLimitPolicy",
    "RestrictPolicy",
    "build_ban_policy",
    "build_policy",
    "check_ports",
    "conflict_message",
    "detect_backend",
    "banned_from_state",
    "diff",
    "limited_class",
    "merge_bans",
    "parse_iptables_save",
    "plan",
    "plan_iptables",
    "plan_iptables_removal",
    "plan_nftables",
    "plan_nftables_removal",
    "plan_removal",
    "removal_revert_steps",
    "render_iptables",
    "render_nftables",
    "render_unit",
    "saved_name",
    "sshd_ports",
    "state_commands",
]

BACKENDS = ("iptables", "nftables")
MODES = ("ratelimit", "restrict", "ban")
FAMILIES = ("ipv4", "ipv6")

#: ``xt_recent``'s ``ip_pkt_list_tot`` module parameter: timestamps kept per source.
RECENT_PKT_LIST_TOT = 20
#: ``multiport`` accepts at most 15 ports.
MAX_PORTS = 15
MAX_SECONDS = 86400
#: Seconds iptables-restore waits for the xtables lock.
XTABLES_WAIT = 10
#: Bound on the nft dynamic sets (sources tracked at once), like ``recent``'s ip_list_tot.
NFT_SET_SIZE = 65535

IPT_CHAIN_PREFIX = "SSHWARD-"
IPT_CHAINS: dict[str, tuple[str, ...]] = {
    # entry chain first: it is the one INPUT jumps to
    "ratelimit": ("SSHWARD-RATELIMIT", "SSHWARD-RL-TRUSTED", "SSHWARD-RL-OTHER"),
    "restrict": ("SSHWARD-RESTRICT",),
    "ban": ("SSHWARD-BAN",),
}
#: Chains a mode owns: its declared chains plus any leftover with the mode's prefix.
IPT_OWNED_PREFIX = {
    "ratelimit": ("SSHWARD-RATELIMIT", "SSHWARD-RL-"),
    "restrict": ("SSHWARD-RESTRICT", "SSHWARD-RS-"),
    "ban": ("SSHWARD-BAN",),
}
#: The one rule in INPUT per mode: only new TCP connections enter our chains.
IPT_JUMP_MATCH = "-p tcp -m conntrack --ctstate NEW"
NFT_TABLES = {"ratelimit": "sshward", "restrict": "sshward_restrict", "ban": "sshward_ban"}
#: Base chain priorities: before the distro's filter chains (priority filter = 0).
NFT_PRIORITY = {"ratelimit": -10, "restrict": -20, "ban": -30}

Network = netaddr.Network


class FirewallError(ValueError):
    """Invalid policy or unusable state; the message names the argument and the fix."""


# --------------------------------------------------------------------------------------------
# Policies


def _as_tuple(value: Any, name: str) -> tuple[Any, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, bytes, int)):
        value = [value]
    try:
        return tuple(value)
    except TypeError:
        raise FirewallError(f"{name}: expected a list, got {type(value).__name__}") from None


def _check_int(name: str, value: Any, low: int, high: int, why: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            value = int(str(value).strip(), 10)
        except ValueError:
            raise FirewallError(f"{name}: {value!r} is not an integer (e.g. {low})") from None
    if not low <= value <= high:
        raise FirewallError(f"{name}: {value} is out of range; use {low}..{high}{why}")
    return int(value)


def _check_ports(name: str, value: Any) -> tuple[int, ...]:
    raw = _as_tuple(value, name)
    if not raw:
        raise FirewallError(f"{name}: at least one port is required (e.g. [22])")
    ports = sorted({_check_int(f"{name}", p, 1, 65535, " (a TCP port)") for p in raw})
    if len(ports) > MAX_PORTS:
        raise FirewallError(
            f"{name}: {len(ports)} ports given; at most {MAX_PORTS} are supported "
            "(the iptables multiport match takes 15)"
        )
    return tuple(ports)


def check_networks(name: str, value: Any, warnings: list[str]) -> tuple[Network, ...]:
    nets: list[Network] = []
    for item in _as_tuple(value, name):
        try:
            net = netaddr.parse_network(item, name)
        except ValueError as exc:
            raise FirewallError(str(exc)) from None
        if netaddr.has_host_bits(item):
            warnings.append(f"{name}: {str(item).strip()!r} has host bits set; using {net}")
        nets.append(net)
    v4 = [n for n in nets if isinstance(n, ipaddress.IPv4Network)]
    v6 = [n for n in nets if isinstance(n, ipaddress.IPv6Network)]
    return tuple(ipaddress.collapse_addresses(v4)) + tuple(ipaddress.collapse_addresses(v6))


def _family(nets: Iterable[Network], family: str) -> list[str]:
    version = 4 if family == "ipv4" else 6
    return [str(n) for n in nets if n.version == version]


def _known(cls: type, params: Mapping[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls) if f.name != "warnings"}
    return {k: v for k, v in params.items() if k in names and v is not None}


_P = TypeVar("_P", bound="_PolicyBase")


class _PolicyBase:
    """What both policies share: construction from parameters and the ports/networks prologue."""

    mode = ""
    ports: tuple[int, ...]
    warnings: tuple[str, ...]

    @classmethod
    def from_params(cls: type[_P], params: Mapping[str, Any]) -> _P:
        """Build from a mapping such as Ansible's ``module.params``; unknown and None keys are ignored."""
        return cls(**_known(cls, params))

    def _check_ports_and_networks(self, *network_fields: str) -> list[str]:
        """Validate ``ports`` and the named network fields in place; returns the warnings."""
        warnings: list[str] = []
        object.__setattr__(self, "ports", _check_ports("ports", self.ports))
        for name in network_fields:
            object.__setattr__(self, name, check_networks(name, getattr(self, name), warnings))
        return warnings

    def _add_warnings(self, warnings: list[str]) -> None:
        object.__setattr__(self, "warnings", tuple(self.warnings) + tuple(warnings))


@dataclass(frozen=True)
class RateLimitPolicy(_PolicyBase):
    """Per-source limit on new SSH connections.

    ``trusted_networks`` (the organisation) get ``trusted_hitcount``/``trusted_seconds``;
    everyone else ``hitcount``/``seconds``; ``allowlist`` sources are never limited. A hit
    count H allows H - 1 new connections per window and drops the H-th, as the classic
    ``recent --set`` / ``--update --hitcount H`` pair does. Lists may be given as any
    iterable; they are validated, canonicalised and collapsed at construction.
    """

    ports: tuple[int, ...] = (22,)
    trusted_networks: tuple[Network, ...] = ()
    trusted_seconds: int = 60
    trusted_hitcount: int = 4
    seconds: int = 300
    hitcount: int = 2
    allowlist: tuple[Network, ...] = ()
    warnings: tuple[str, ...] = field(default=(), compare=False)

    mode = "ratelimit"

    def __post_init__(self) -> None:
        warnings = self._check_ports_and_networks("trusted_networks", "allowlist")
        for prefix in ("trusted_", ""):
            secs = _check_int(
                f"{prefix}seconds",
                getattr(self, f"{prefix}seconds"),
                1,
                MAX_SECONDS,
                " (the window in seconds)",
            )
            hits = _check_int(
                f"{prefix}hitcount",
                getattr(self, f"{prefix}hitcount"),
                2,
                RECENT_PKT_LIST_TOT,
                ": the hit count-th new connection in the window is dropped, so 1 would "
                "drop every connection, and the iptables recent module keeps only "
                f"{RECENT_PKT_LIST_TOT} timestamps per source (ip_pkt_list_tot)",
            )
            object.__setattr__(self, f"{prefix}seconds", secs)
            object.__setattr__(self, f"{prefix}hitcount", hits)
        self._add_warnings(warnings)


@dataclass(frozen=True)
class RestrictPolicy(_PolicyBase):
    """Incident lockdown: new SSH connections only from ``admin_networks`` (and loopback).

    Established sessions are untouched (closing them is the session module's job). Like the
    rate limit, restrict never accepts: admin connections go on to the rate limit (if loaded)
    and to the host's own rules, so put the admin addresses in the rate limit's allowlist too
    when both are active.
    """

    admin_networks: tuple[Network, ...] = ()
    ports: tuple[int, ...] = (22,)
    allow_loopback: bool = True
    warnings: tuple[str, ...] = field(default=(), compare=False)

    mode = "restrict"

    def __post_init__(self) -> None:
        warnings = self._check_ports_and_networks("admin_networks")
        if not self.admin_networks:
            raise FirewallError(
                "admin_networks: at least one address is required; restrict mode drops every other "
                "new SSH connection, yours included (e.g. ['203.0.113.7/32'])"
            )
        object.__setattr__(self, "allow_loopback", bool(self.allow_loopback))
        self._add_warnings(warnings)


@dataclass(frozen=True)
class BanPolicy:
    """Lasting bans: every new SSH connection from ``addresses`` is dropped, until removed.

    sshward's own answer when fail2ban is absent (or to outlast its bantime): a plain chain of
    DROP rules (iptables; no ipset needed) or two interval sets in ``table inet sshward_ban``
    (nftables), persisted like the other modes. ``protect_networks`` (the admin's and trusted
    addresses) are never banned: an address inside or overlapping one, and loopback, is left
    out with a warning, including bans already in place.
    """

    addresses: tuple[Network, ...] = ()
    ports: tuple[int, ...] = (22,)
    protect_networks: tuple[Network, ...] = ()
    skipped: tuple[str, ...] = field(default=(), compare=False)
    warnings: tuple[str, ...] = field(default=(), compare=False)

    mode = "ban"

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> BanPolicy:
        """Build from a mapping such as Ansible's ``module.params``; unknown and None keys are ignored."""
        return cls(**{k: v for k, v in _known(cls, params).items() if k != "skipped"})

    def __post_init__(self) -> None:
        warnings: list[str] = []
        object.__setattr__(self, "ports", _check_ports("ports", self.ports))
        protect = check_networks("protect_networks", self.protect_networks, warnings)
        # Not collapsed: each ban stays the network it was given as, so it can be lifted exactly.
        given = {
            n
            for item in _as_tuple(self.addresses, "addresses")
            for n in check_networks("addresses", str(item), warnings)
        }
        wanted = sorted(given, key=lambda n: (n.version, n))
        keep: list[Network] = []
        skipped = list(self.skipped)
        for net in wanted:
            guard = next((p for p in protect if net.overlaps(p)), None)
            if guard is not None or net.is_loopback:
                why = f"it overlaps the protected (admin or trusted) network {guard}" if guard else "it is loopback"
                warnings.append(f"addresses: {net} is not banned: {why}")
                skipped.append(str(net))
                continue
            keep.append(net)
        object.__setattr__(self, "protect_networks", protect)
        object.__setattr__(self, "addresses", tuple(keep))
        object.__setattr__(self, "skipped", tuple(skipped))
        object.__setattr__(self, "warnings", tuple(self.warnings) + tuple(warnings))


def merge_bans(policy: BanPolicy, current: Iterable[str], remove: bool = False) -> BanPolicy:
    """The ban list after this request: ``current`` (what is loaded now, see :func:`banned_from_state`)
    plus ``policy.addresses``, or, with ``remove``, minus exactly those networks."""
    now = {ipaddress.ip_network(str(c).strip(), strict=False) for c in current}
    asked = set(policy.addresses)
    result = sorted(now - asked if remove else now | asked, key=lambda n: (n.version, n))
    return BanPolicy(
        addresses=tuple(result),
        ports=policy.ports,
        protect_networks=policy.protect_networks,
        skipped=policy.skipped,
        warnings=policy.warnings,
    )


_IPT_BAN_RULE = re.compile(r"^-s (\S+) -j DROP$")


def banned_from_state(
    backend: str, *, iptables_save: str = "", ip6tables_save: str = "", nft_json: str | None = None
) -> list[str]:
    """The networks banned now, read from the state commands' outputs (as :func:`plan` takes them)."""
    out: list[str] = []
    if _check_backend(backend) == "iptables":
        chain = IPT_CHAINS["ban"][0]
        for text in (iptables_save, ip6tables_save):
            for spec in parse_iptables_save(text or "").table_rules("filter", chain):
                m = _IPT_BAN_RULE.match(spec)
                if m:
                    out.append(str(ipaddress.ip_network(m.group(1), strict=False)))
        return out
    for line in _nft_normal(nft_json, NFT_TABLES["ban"]).splitlines():
        m = re.match(r"^set banned[46] .* elements=(\S*)$", line)
        if m:
            out += [str(ipaddress.ip_network(e, strict=False)) for e in m.group(1).split(",") if e]
    return out


def _ipt_ban_rules(policy: BanPolicy, family: str) -> dict[str, list[str]]:
    rules = [f"{_ipt_ports(policy.ports, True)} -j RETURN"]
    rules += [f"-s {_host(n, family)} -j DROP" for n in _family(policy.addresses, family)]
    return {IPT_CHAINS["ban"][0]: rules}


def _nft_ban_model(policy: BanPolicy, entry: _NftChain) -> _NftTable:
    sets, rules = [], []
    for kw, name, s in _addr_sets("banned", policy.addresses):
        sets.append(s)
        rules.append(f"{kw} saddr @{name} drop")
    return _NftTable(NFT_TABLES["ban"], tuple(sets), (entry, _NftChain("ssh_new", tuple(rules))))


Policy = Union[RateLimitPolicy, RestrictPolicy, BanPolicy]


def _check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise FirewallError(f"backend: {backend!r} is not supported; use one of {', '.join(BACKENDS)} (or auto)")
    return backend


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise FirewallError(f"mode: {mode!r} is not supported; use one of {', '.join(MODES)}")
    return mode


def _check_family(family: str) -> str:
    if family not in FAMILIES:
        raise FirewallError(f"family: {family!r} is not supported; use ipv4 or ipv6")
    return family


# --------------------------------------------------------------------------------------------
# Plans


@dataclass(frozen=True)
class Plan:
    """One load to run: ``script`` goes to ``command``'s standard input when ``changed``.

    ``check_command`` validates the same script without applying it (``--test`` / ``-c``).
    ``before`` and ``after`` are sshward's own rules now and after, for a diff.
    """

    backend: str
    family: str
    mode: str
    command: tuple[str, ...]
    check_command: tuple[str, ...]
    script: str
    changed: bool
    before: str
    after: str


def state_commands(backend: str, mode: str = "ratelimit", nft_version: str | None = None) -> dict[str, tuple[str, ...]]:
    """The argv whose standard output the plan functions want, keyed by their argument name.

    nftables: ``nft -j list table inet <ours>``; a failing command (table absent) means
    ``None``. nft before 1.0 (Debian 11's 0.9.8) leaves the statements inside set updates
    (our per-source limits) out of its JSON, so for it, given ``nft_version`` (``nft -v``
    output), the text listing is asked for instead: the plan functions read both.
    """
    if _check_backend(backend) == "iptables":
        return {"ipv4": ("iptables-save",), "ipv6": ("ip6tables-save",)}
    table = NFT_TABLES[_check_mode(mode)]
    match = re.search(r"v(\d+)\.(\d+)", nft_version or "")
    if match and int(match.group(1)) < 1:
        return {"inet": ("nft", "list", "table", "inet", table)}
    return {"inet": ("nft", "-j", "list", "table", "inet", table)}


# --------------------------------------------------------------------------------------------
# iptables-save parsing


@dataclass
class IptablesSave:
    """Parsed ``iptables-save``: per table, its chains (name -> policy) and rules in order."""

    chains: dict[str, dict[str, str]] = field(default_factory=dict)
    rules: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def table_rules(self, table: str, chain: str) -> list[str]:
        return [spec for name, spec in self.rules.get(table, []) if name == chain]


_COUNTERS = re.compile(r"^\[\d+:\d+\]\s+")


def parse_iptables_save(text: str) -> IptablesSave:
    """Parse ``iptables-save`` / ``ip6tables-save`` output (legacy or nft, with or without -c)."""
    save = IptablesSave()
    table: str | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            table = line[1:].strip()
            save.chains.setdefault(table, {})
            save.rules.setdefault(table, [])
            continue
        if line == "COMMIT":
            table = None
            continue
        if table is None:
            raise FirewallError(f"iptables-save output, line {lineno}: {raw!r} is outside a table")
        if line.startswith(":"):
            parts = line[1:].split()
            save.chains[table][parts[0]] = parts[1] if len(parts) > 1 else "-"
            continue
        line = _COUNTERS.sub("", line)
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("-A", "--append"):
            save.rules[table].append((parts[1], " ".join(parts[2:])))
            continue
        raise FirewallError(f"iptables-save output, line {lineno}: cannot parse {raw!r}")
    return save


def _target(spec: str) -> str | None:
    tokens = spec.split()
    for i, tok in enumerate(tokens[:-1]):
        if tok in ("-j", "--jump", "-g", "--goto"):
            return tokens[i + 1]
    return None


# --------------------------------------------------------------------------------------------
# iptables rendering


def _ipt_ports(ports: Sequence[int], negate: bool) -> str:
    neg = "! " if negate else ""
    return f"-p tcp -m multiport {neg}--dports {','.join(str(p) for p in ports)}"


def _recent(name: str, family: str) -> str:
    mask = "255.255.255.255" if family == "ipv4" else "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    return f"--name {name} --mask {mask} --rsource"


def _ipt_chain_rules(policy: Policy, family: str) -> dict[str, list[str]]:
    """Desired rules of our chains, written as ``iptables-save`` prints them."""
    suffix = "4" if family == "ipv4" else "6"
    if isinstance(policy, BanPolicy):
        return _ipt_ban_rules(policy, family)
    if isinstance(policy, RestrictPolicy):
        chain = IPT_CHAINS["restrict"][0]
        rules = [f"{_ipt_ports(policy.ports, True)} -j RETURN"]
        if policy.allow_loopback:
            rules.append("-i lo -j RETURN")
        rules += [f"-s {_host(n, family)} -j RETURN" for n in _family(policy.admin_networks, family)]
        rules.append("-j DROP")
        return {chain: rules}
    entry, trusted, other = IPT_CHAINS["ratelimit"]
    rules = [f"{_ipt_ports(policy.ports, True)} -j RETURN"]
    rules += [f"-s {_host(n, family)} -j RETURN" for n in _family(policy.allowlist, family)]
    rules += [f"-s {_host(n, family)} -g {trusted}" for n in _family(policy.trusted_networks, family)]
    rules.append(f"-g {other}")
    out = {entry: rules}
    for chain, cls, secs, hits in (
        (trusted, "trusted", policy.trusted_seconds, policy.trusted_hitcount),
        (other, "other", policy.seconds, policy.hitcount),
    ):
        name = f"sshward_{cls}{suffix}"
        out[chain] = [
            f"-m recent --set {_recent(name, family)}",
            f"-m recent --update --seconds {secs} --hitcount {hits} {_recent(name, family)} -j DROP",
        ]
    return out


def _host(net: str, family: str) -> str:
    """iptables-save always prints the prefix length, /32 and /128 included."""
    if "/" in net:
        return net
    return f"{net}/32" if family == "ipv4" else f"{net}/128"


def _restore_cmd(family: str, test: bool = False) -> tuple[str, ...]:
    # --wait: docker, fail2ban... may hold the xtables lock (legacy); iptables-nft ignores it.
    # --test is a syntax check only with iptables-nft; legacy also validates chains and targets.
    tool = "iptables-restore" if family == "ipv4" else "ip6tables-restore"
    base = (tool, "--noflush", f"--wait={XTABLES_WAIT}")
    return (*base, "--test") if test else base


def _jump_spec(mode: str) -> str:
    return f"{IPT_JUMP_MATCH} -j {IPT_CHAINS[mode][0]}"


def _owned(mode: str, chain: str) -> bool:
    return chain.startswith(IPT_OWNED_PREFIX[mode])


def _ipt_state_text(chains: Mapping[str, Sequence[str]], jumps: Sequence[tuple[int, str]]) -> str:
    lines = [f"-A INPUT {spec}  # position {pos}" for pos, spec in jumps]
    for chain in sorted(chains):
        lines.append(f":{chain}")
        lines += [f"-A {chain} {spec}" for spec in chains[chain]]
    return "\n".join(lines) + ("\n" if lines else "")


def render_iptables(policy: Policy, family: str) -> str:
    """The restore script for a host with none of sshward's rules yet (also the diff's "after")."""
    return plan_iptables(policy, family, "").script


def plan_iptables(policy: Policy, family: str, current_save: str) -> Plan:
    """Compare ``iptables-save`` (or ``ip6tables-save``) output with ``policy`` for one family.

    Returns a plan whose script, for ``iptables-restore --noflush``, (re)creates and fills only
    this mode's chains, removes leftover chains of this mode, and leaves exactly one jump from
    INPUT, ahead of every rule that is not one of sshward's jumps.
    """
    _check_family(family)
    mode = policy.mode
    save = parse_iptables_save(current_save)
    chains = save.chains.get("filter", {})
    desired = _ipt_chain_rules(policy, family)
    jump = _jump_spec(mode)

    input_rules = save.table_rules("filter", "INPUT")
    current_jumps = [(i + 1, spec) for i, spec in enumerate(input_rules) if _owned(mode, _target(spec) or "")]
    current = {c: save.table_rules("filter", c) for c in chains if _owned(mode, c)}
    # A jump is well placed when only sshward jumps come before it.
    jump_ok = False
    if len(current_jumps) == 1 and current_jumps[0][1] == jump:
        pos = current_jumps[0][0]
        jump_ok = all((_target(s) or "").startswith(IPT_CHAIN_PREFIX) for s in input_rules[: pos - 1])
    changed = not (jump_ok and current == desired)

    lines: list[str] = []
    if changed:
        stale = sorted(c for c in current if c not in desired)
        lines = ["*filter"]
        lines += [f":{c} - [0:0]" for c in desired]
        lines += [f"-D INPUT {spec}" for _, spec in current_jumps]
        lines += [f"-F {c}" for c in desired]
        lines += [f"-F {c}" for c in stale]
        lines += [f"-X {c}" for c in stale]
        for chain, rules in desired.items():
            lines += [f"-A {chain} {spec}" for spec in rules]
        lines += [f"-I INPUT 1 {jump}", "COMMIT"]
    before = _ipt_state_text(current, current_jumps)
    after_pos = current_jumps[0][0] if jump_ok else 1
    after = _ipt_state_text(desired, [(after_pos, jump)])
    return Plan(
        "iptables",
        family,
        mode,
        _restore_cmd(family),
        _restore_cmd(family, True),
        "\n".join(lines) + ("\n" if lines else ""),
        changed,
        before,
        after,
    )


def plan_iptables_removal(mode: str, family: str, current_save: str) -> Plan:
    """Remove this mode's INPUT jumps and chains, whatever their content; a no-op when absent."""
    _check_mode(mode)
    _check_family(family)
    save = parse_iptables_save(current_save)
    chains = sorted(c for c in save.chains.get("filter", {}) if _owned(mode, c))
    jumps = [
        (i + 1, spec) for i, spec in enumerate(save.table_rules("filter", "INPUT")) if _owned(mode, _target(spec) or "")
    ]
    # Rules in chains we do not own that reference ours would make -X fail: drop them too.
    foreign = [
        (chain, spec)
        for chain, spec in save.rules.get("filter", [])
        if chain != "INPUT" and not _owned(mode, chain) and _owned(mode, _target(spec) or "")
    ]
    changed = bool(chains or jumps or foreign)
    lines: list[str] = []
    if changed:
        lines = ["*filter"]
        lines += [f"-D INPUT {spec}" for _, spec in jumps]
        lines += [f"-D {chain} {spec}" for chain, spec in foreign]
        lines += [f"-F {c}" for c in chains]
        lines += [f"-X {c}" for c in chains]
        lines.append("COMMIT")
    current = {c: save.table_rules("filter", c) for c in chains}
    return Plan(
        "iptables",
        family,
        mode,
        _restore_cmd(family),
        _restore_cmd(family, True),
        "\n".join(lines) + ("\n" if lines else ""),
        changed,
        _ipt_state_text(current, jumps),
        "",
    )


# --------------------------------------------------------------------------------------------
# nftables model and rendering


@dataclass(frozen=True)
class _NftSet:
    name: str
    type: str
    flags: tuple[str, ...]
    timeout: int = 0
    size: int = 0
    elements: tuple[str, ...] = ()

    def render(self) -> list[str]:
        out = [f"\tset {self.name} {{", f"\t\ttype {self.type}"]
        if self.size:
            out.append(f"\t\tsize {self.size}")
        out.append(f"\t\tflags {','.join(self.flags)}")
        if self.timeout:
            out.append(f"\t\ttimeout {self.timeout}s")
        if self.elements:
            out.append(f"\t\telements = {{ {', '.join(self.elements)} }}")
        out.append("\t}")
        return out


@dataclass(frozen=True)
class _NftChain:
    name: str
    rules: tuple[str, ...]
    hook: str = ""
    priority: int = 0

    def render(self) -> list[str]:
        out = [f"\tchain {self.name} {{"]
        if self.hook:
            out.append(f"\t\ttype filter hook {self.hook} priority {self.priority}; policy accept;")
        out += [f"\t\t{r}" for r in self.rules]
        out.append("\t}")
        return out


@dataclass(frozen=True)
class _NftTable:
    name: str
    sets: tuple[_NftSet, ...]
    chains: tuple[_NftChain, ...]

    def render(self) -> str:
        lines = [f"table inet {self.name} {{"]
        for s in self.sets:
            lines += s.render()
        for c in self.chains:
            lines += c.render()
        lines.append("}")
        return "\n".join(lines) + "\n"

    def normal(self) -> str:
        """Canonical text used to compare with a listing (element order and spacing removed)."""
        norm = [f"table inet {self.name}"]
        for s in sorted(self.sets, key=lambda s: s.name):
            norm.append(
                f"set {s.name} type={s.type} flags={','.join(sorted(f for f in s.flags if f != 'dynamic'))} "
                f"timeout={s.timeout} "
                f"size={s.size} elements={','.join(sorted(s.elements))}"
            )
        for c in sorted(self.chains, key=lambda c: c.name):
            norm.append(f"chain {c.name} hook={c.hook or '-'} priority={c.priority if c.hook else '-'}")
            norm += [f"  {r}" for r in c.rules]
        return "\n".join(norm) + "\n"


_RATE_UNITS = (("second", 1), ("minute", 60), ("hour", 3600), ("day", 86400), ("week", 604800))


def _nft_rate(count: int, seconds: int) -> str:
    """``count`` per ``seconds`` as nft's integer ``rate/unit`` (exact when possible)."""
    for unit, length in _RATE_UNITS:
        if (count * length) % seconds == 0:
            return f"{count * length // seconds}/{unit}"
    return f"{max(1, count * 604800 // seconds)}/week"


def _nft_ports(ports: Sequence[int]) -> str:
    if len(ports) == 1:
        return f"tcp dport {ports[0]}"
    return "tcp dport { " + ", ".join(str(p) for p in ports) + " }"


def _nft_net(net: str) -> str:
    """nft lists single hosts without their prefix length."""
    try:
        parsed = ipaddress.ip_network(net, strict=False)
    except ValueError:
        return net
    return str(parsed.network_address) if parsed.prefixlen == parsed.max_prefixlen else str(parsed)


def _addr_sets(prefix: str, nets: Sequence[Network]) -> list[tuple[str, str, _NftSet]]:
    """(ip keyword, set name, set) per family that has networks."""
    out = []
    for family, kw, typ in (("ipv4", "ip", "ipv4_addr"), ("ipv6", "ip6", "ipv6_addr")):
        elems = tuple(_nft_net(n) for n in _family(nets, family))
        if elems:
            name = f"{prefix}{'4' if family == 'ipv4' else '6'}"
            out.append((kw, name, _NftSet(name, typ, ("interval",), elements=elems)))
    return out


def _nft_model(policy: Policy) -> _NftTable:
    mode = policy.mode
    sets: list[_NftSet] = []
    chains: list[_NftChain] = []
    entry = _NftChain(
        "input",
        (f"{_nft_ports(policy.ports)} ct state new jump ssh_new",),
        hook="input",
        priority=NFT_PRIORITY[mode],
    )
    if isinstance(policy, BanPolicy):
        return _nft_ban_model(policy, entry)
    if isinstance(policy, RestrictPolicy):
        rules = ['iif "lo" return'] if policy.allow_loopback else []
        for kw, name, s in _addr_sets("admins", policy.admin_networks):
            sets.append(s)
            rules.append(f"{kw} saddr @{name} return")
        rules.append("drop")
        chains = [entry, _NftChain("ssh_new", tuple(rules))]
        return _NftTable(NFT_TABLES[mode], tuple(sets), tuple(chains))

    rules = []
    for kw, name, s in _addr_sets("allow", policy.allowlist):
        sets.append(s)
        rules.append(f"{kw} saddr @{name} return")
    classes = [("other", policy.seconds, policy.hitcount)]
    for kw, name, s in _addr_sets("trusted", policy.trusted_networks):
        sets.append(s)
        rules.append(f"{kw} saddr @{name} goto trusted")
    if policy.trusted_networks:
        classes.insert(0, ("trusted", policy.trusted_seconds, policy.trusted_hitcount))
    rules.append("goto other")
    chains = [entry, _NftChain("ssh_new", tuple(rules))]
    for cls, secs, hits in classes:
        allowed = hits - 1
        limit = f"limit rate over {_nft_rate(allowed, secs)} burst {allowed} packets"
        blocked_rules = []
        meter_rules = []
        for kw, suffix, typ in (("ip", "4", "ipv4_addr"), ("ip6", "6", "ipv6_addr")):
            blocked, meter = f"blocked_{cls}{suffix}", f"meter_{cls}{suffix}"
            sets.append(_NftSet(meter, typ, ("dynamic", "timeout"), secs, NFT_SET_SIZE))
            sets.append(_NftSet(blocked, typ, ("dynamic", "timeout"), secs, NFT_SET_SIZE))
            blocked_rules.append(f"{kw} saddr @{blocked} update @{blocked} {{ {kw} saddr }} drop")
            meter_rules.append(f"update @{meter} {{ {kw} saddr {limit} }} add @{blocked} {{ {kw} saddr }} drop")
        chains.append(_NftChain(cls, tuple(blocked_rules + meter_rules)))
    return _NftTable(NFT_TABLES[mode], tuple(sets), tuple(chains))


def _nft_replace_script(table: str, body: str) -> str:
    # "add" makes the "delete" valid when the table is absent; the file is one transaction.
    return f"add table inet {table}\ndelete table inet {table}\n{body}"


def render_nftables(policy: Policy) -> str:
    """The ``nft -f`` file that atomically replaces our table with the desired one."""
    model = _nft_model(policy)
    return _nft_replace_script(model.name, model.render())


# --------------------------------------------------------------------------------------------
# nftables JSON listing -> the same canonical text


class _Unknown(Exception):
    pass


def _j_value(v: Any) -> str:
    if isinstance(v, dict):
        if "prefix" in v:
            return f"{v['prefix']['addr']}/{v['prefix']['len']}"
        if "set" in v:
            items = v["set"] if isinstance(v["set"], list) else [v["set"]]
            return "{ " + ", ".join(_j_value(i) for i in items) + " }"
        if "range" in v:
            lo, hi = v["range"]
            return f"{_j_value(lo)}-{_j_value(hi)}"
        if "elem" in v:
            return _j_value(v["elem"]["val"])
        raise _Unknown(json.dumps(v, sort_keys=True))
    if isinstance(v, list):
        return "{ " + ", ".join(_j_value(i) for i in v) + " }"
    if isinstance(v, str):
        return v
    return str(v)


def _j_expr(e: Any) -> str:
    if isinstance(e, dict):
        if "payload" in e:
            p = e["payload"]
            if "protocol" in p and "field" in p:
                return f"{p['protocol']} {p['field']}"
        if "meta" in e:
            return f"meta {e['meta']['key']}"
        if "ct" in e:
            return f"ct {e['ct']['key']}"
    if isinstance(e, str) and e.startswith("@"):
        return e
    return _j_value(e)


_META_SHORT = {"iif", "oif", "iifname", "oifname", "mark"}


def _j_stmt(stmt: Mapping[str, Any]) -> str:
    if len(stmt) != 1:
        raise _Unknown(json.dumps(stmt, sort_keys=True))
    ((key, val),) = stmt.items()
    if key == "match":
        left = _j_expr(val["left"])
        right = val["right"]
        op = val.get("op", "==")
        if left.startswith("meta ") and left[5:] in _META_SHORT:
            left = left[5:]
        if left == "ct state":
            rhs = ",".join(right) if isinstance(right, list) else str(right)
        elif left in ("iif", "iifname") and isinstance(right, str):
            rhs = f'"{right}"'
        else:
            rhs = _j_expr(right)
        if op in ("==", "in"):
            return f"{left} {rhs}"
        return f"{left} {op} {rhs}"
    if key in ("accept", "drop", "return", "continue") and val is None:
        return key
    if key in ("jump", "goto"):
        return f"{key} {val['target']}"
    if key == "set":
        elem = _j_expr(val["elem"])
        inner = [elem]
        for sub in val.get("stmt", []):
            inner.append(_j_stmt(sub))
        if "timeout" in val:
            raise _Unknown(json.dumps(val, sort_keys=True))
        return f"{val['op']} {val['set']} {{ {' '.join(inner)} }}"
    if key == "limit":
        if val.get("rate_unit", "packets") != "packets":
            raise _Unknown(json.dumps(val, sort_keys=True))
        over = "over " if val.get("inv") else ""
        burst = val.get("burst", 0)
        text = f"limit rate {over}{val['rate']}/{val.get('per', 'second')}"
        return f"{text} burst {burst} packets" if burst else text
    if key == "counter":
        return ""
    raise _Unknown(json.dumps(stmt, sort_keys=True))


def _timeout_seconds(v: Any) -> int:
    if isinstance(v, int):
        return v
    raise _Unknown(repr(v))


def _nft_normal_from_json(text: str, table: str) -> str | None:
    """Canonical text of ``table`` from ``nft -j list table inet TABLE``; None when absent."""
    if not text or not text.strip():
        return None
    data = json.loads(text)
    sets: list[str] = []
    chains: dict[str, list[str]] = {}
    heads: dict[str, str] = {}
    found = False
    for obj in data.get("nftables", []):
        if "table" in obj:
            found = found or (obj["table"].get("family") == "inet" and obj["table"].get("name") == table)
        elif "set" in obj:
            s = obj["set"]
            if s.get("family") != "inet" or s.get("table") != table:
                continue
            flags = s.get("flags", [])
            flags = [flags] if isinstance(flags, str) else list(flags)
            # Older nft leaves "dynamic" out of its JSON; elements of timeout sets are live state.
            flags = [f for f in flags if f != "dynamic"]
            elems = [] if "timeout" in flags else s.get("elem", [])
            try:
                elements = sorted(_nft_net(_j_value(e)) for e in elems)
                timeout = _timeout_seconds(s.get("timeout", 0))
            except _Unknown as err:
                elements, timeout = [f"<unknown {err}>"], -1
            typ = s.get("type")
            sets.append(
                f"set {s['name']} type={typ if isinstance(typ, str) else json.dumps(typ)} "
                f"flags={','.join(sorted(flags))} timeout={timeout} size={s.get('size', 0)} "
                f"elements={','.join(elements)}"
            )
        elif "chain" in obj:
            c = obj["chain"]
            if c.get("family") != "inet" or c.get("table") != table:
                continue
            hook = c.get("hook", "")
            extra = ""
            if hook and (c.get("type") != "filter" or c.get("policy", "accept") != "accept"):
                extra = f" type={c.get('type')} policy={c.get('policy')}"
            heads[c["name"]] = (
                f"chain {c['name']} hook={hook or '-'} priority={c.get('prio', 0) if hook else '-'}{extra}"
            )
            chains.setdefault(c["name"], [])
        elif "rule" in obj:
            r = obj["rule"]
            if r.get("family") != "inet" or r.get("table") != table:
                continue
            try:
                parts = [_j_stmt(st) for st in r.get("expr", [])]
                rule = " ".join(p for p in parts if p)
            except (_Unknown, KeyError, TypeError) as err:
                rule = f"<unknown {err}>"
            chains.setdefault(r["chain"], []).append(rule)
    if not found:
        return None
    norm = [f"table inet {table}"] + sorted(sets)
    for name in sorted(chains):
        norm.append(heads.get(name, f"chain {name} hook=? priority=?"))
        norm += [f"  {r}" for r in chains[name]]
    return "\n".join(norm) + "\n"


_PRIORITY_NAMES = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100}
_DURATION = re.compile(r"(\d+)(ms|d|h|m|s)")
_DURATION_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def _text_priority(text: str) -> int | str:
    m = re.fullmatch(r"(-?\d+)|([a-z]+)(?:\s*([+-])\s*(\d+))?", text.strip())
    if not m:
        return text.strip()
    if m.group(1):
        return int(m.group(1))
    if m.group(2) not in _PRIORITY_NAMES:
        return text.strip()
    offset = int(m.group(4) or 0)
    return _PRIORITY_NAMES[m.group(2)] + (-offset if m.group(3) == "-" else offset)


def _text_duration(text: str) -> int:
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return -1
    return sum(int(n) * _DURATION_UNITS[u] for n, u in parts if u != "ms")


def _nft_normal_from_text(text: str, table: str) -> str | None:
    """Canonical text of ``table`` from ``nft list table inet TABLE`` (text listing)."""
    lines = [re.sub(r"\s*# handle \d+$", "", ln).strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if not lines or not re.fullmatch(rf"table inet {re.escape(table)} \{{", lines[0]):
        return None
    sets: list[str] = []
    chains: dict[str, list[str]] = {}
    heads: dict[str, str] = {}
    i = 1
    while i < len(lines):
        line = lines[i]
        m = re.fullmatch(r"(set|chain) (\S+) \{", line)
        i += 1
        if not m:
            continue
        kind, name = m.groups()
        body: list[str] = []
        while i < len(lines) and lines[i] != "}":
            if lines[i].startswith("elements = {"):
                chunk = lines[i]
                while chunk.count("{") > chunk.count("}") and i + 1 < len(lines):
                    i += 1
                    chunk += " " + lines[i]
                body.append(chunk)
            else:
                body.append(lines[i])
            i += 1
        i += 1
        if kind == "set":
            attrs = {"type": "", "flags": "", "timeout": "0", "size": "0"}
            elements: list[str] = []
            for b in body:
                key, _, value = b.partition(" ")
                if key == "elements":
                    inner = value.split("{", 1)[1].rsplit("}", 1)[0]
                    elements = sorted(_nft_net(e.strip()) for e in inner.split(",") if e.strip())
                elif key in attrs:
                    attrs[key] = value.strip()
            flags = sorted(f for f in attrs["flags"].split(",") if f and f != "dynamic")
            timeout = _text_duration(attrs["timeout"]) if attrs["timeout"] != "0" else 0
            if "timeout" in flags:
                elements = []
            sets.append(
                f"set {name} type={attrs['type']} flags={','.join(flags)} timeout={timeout} "
                f"size={attrs['size']} elements={','.join(elements)}"
            )
        else:
            rules = []
            head = f"chain {name} hook=- priority=-"
            for b in body:
                hm = re.fullmatch(r"type (\S+) hook (\S+) priority ([^;]+);(?:\s*policy (\S+);)?", b)
                if hm:
                    typ, hook, prio, policy = hm.groups()
                    extra = ""
                    if typ != "filter" or (policy or "accept") != "accept":
                        extra = f" type={typ} policy={policy}"
                    head = f"chain {name} hook={hook} priority={_text_priority(prio)}{extra}"
                else:
                    rules.append(b)
            heads[name] = head
            chains[name] = rules
    norm = [f"table inet {table}"] + sorted(sets)
    for name in sorted(chains):
        norm.append(heads[name])
        norm += [f"  {r}" for r in chains[name]]
    return "\n".join(norm) + "\n"


def _nft_normal(listing: str | None, table: str) -> str:
    """Canonical form of our table from a JSON or text listing; "" when the table is absent."""
    text = (listing or "").strip()
    if not text:
        return ""
    if text.startswith("{"):
        return _nft_normal_from_json(text, table) or ""
    return _nft_normal_from_text(text, table) or ""


_NFT_CMD = ("nft", "-f", "/dev/stdin")
_NFT_CHECK = ("nft", "-c", "-f", "/dev/stdin")


def plan_nftables(policy: Policy, current: str | None) -> Plan:
    """Compare our table's listing (``nft -j list table inet <ours>`` or the text listing;
    None or "" when the table is absent) with ``policy``.

    The script replaces the table in one transaction; loading it resets the per-source
    meters and blocks, which is why an unchanged table is never reloaded.
    """
    model = _nft_model(policy)
    after = model.normal()
    before = _nft_normal(current, model.name)
    changed = before != after
    script = _nft_replace_script(model.name, model.render()) if changed else ""
    return Plan("nftables", "inet", policy.mode, _NFT_CMD, _NFT_CHECK, script, changed, before, after)


def plan_nftables_removal(mode: str, current: str | None) -> Plan:
    """Delete our table of ``mode``; a no-op when the listing shows it absent."""
    table = NFT_TABLES[_check_mode(mode)]
    before = _nft_normal(current, table)
    changed = bool(before)
    script = f"add table inet {table}\ndelete table inet {table}\n" if changed else ""
    return Plan("nftables", "inet", mode, _NFT_CMD, _NFT_CHECK, script, changed, before, "")


# --------------------------------------------------------------------------------------------
# Front-end helpers


def plan(
    policy: Policy,
    backend: str,
    *,
    iptables_save: str = "",
    ip6tables_save: str = "",
    nft_json: str | None = None,
) -> list[Plan]:
    """All plans for one policy: two (IPv4, IPv6) for iptables, one for nftables."""
    if _check_backend(backend) == "iptables":
        return [plan_iptables(policy, "ipv4", iptables_save), plan_iptables(policy, "ipv6", ip6tables_save)]
    return [plan_nftables(policy, nft_json)]


def plan_removal(
    mode: str,
    backend: str,
    *,
    iptables_save: str = "",
    ip6tables_save: str = "",
    nft_json: str | None = None,
) -> list[Plan]:
    """Plans that remove every trace of ``mode`` (jumps, chains, our table)."""
    if _check_backend(backend) == "iptables":
        return [
            plan_iptables_removal(mode, "ipv4", iptables_save),
            plan_iptables_removal(mode, "ipv6", ip6tables_save),
        ]
    return [plan_nftables_removal(mode, nft_json)]


def diff(plans: Sequence[Plan]) -> list[dict[str, str]]:
    """Ansible-style diffs (before/after with headers) of sshward's own rules, one per plan."""
    out = []
    for p in plans:
        where = "iptables" if p.family == "ipv4" else "ip6tables" if p.family == "ipv6" else "nft"
        what = f"table inet {NFT_TABLES[p.mode]}" if p.backend == "nftables" else f"{p.mode} chains"
        out.append(
            {
                "before_header": f"{where}: {what} (current)",
                "after_header": f"{where}: {what} (after)",
                "before": p.before,
                "after": p.after,
            }
        )
    return out


# --------------------------------------------------------------------------------------------
# Front ends: ports, parameters, persistence (the sshward_firewall module and the pyinfra deploy)

UNIT_NAME = "sshward-firewall.service"
UNIT_DIR = "/etc/systemd/system"
#: Saved file per (backend, family), named per mode; the boot unit loads them in this order.
SAVED: dict[tuple[str, str], str] = {
    ("iptables", "ipv4"): "{mode}.ipv4.rules",
    ("iptables", "ipv6"): "{mode}.ipv6.rules",
    ("nftables", "inet"): "{mode}.nft",
}
#: The binaries the boot unit names, looked up on the host by the front end.
UNIT_BINARIES = ("iptables", "ip6tables", "iptables-restore", "ip6tables-restore", "nft")


def sshd_ports(sshd_T: str) -> list[int]:
    """Ports sshd listens on, from ``sshd -T`` output (``port`` and ``listenaddress`` lines)."""
    ports: set[int] = set()
    for line in sshd_T.splitlines():
        key, _, value = line.strip().partition(" ")
        value = value.strip()
        if key == "port" and value.isdigit():
            ports.add(int(value))
        elif key == "listenaddress":
            m = re.search(r"\]?:(\d+)$", value)
            if m and (value.startswith("[") or value.count(":") == 1):
                ports.add(int(m.group(1)))
    return sorted(ports)


def build_policy(params: Mapping[str, Any]) -> Policy:
    """The policy for sshward_firewall-style parameters (``mode`` selects it); raises FirewallError
    naming the argument. ``admin_addresses`` join the rate limit's allowlist."""
    if params["mode"] == "restrict":
        return RestrictPolicy.from_params(params)
    if params["mode"] == "ban":
        return build_ban_policy(params)
    if params.get("addresses") or params.get("protect_networks"):
        raise FirewallError("addresses, protect_networks: only used with mode=ban; remove them or set mode=ban")
    if params.get("admin_networks"):
        raise FirewallError("admin_networks: only used with mode=restrict; remove it or set mode=restrict")
    admins = list(params.get("admin_addresses") or [])
    return RateLimitPolicy.from_params(dict(params, allowlist=list(params.get("allowlist") or []) + admins))


def build_ban_policy(params: Mapping[str, Any]) -> BanPolicy:
    """Ban policy: the admin's addresses (given, and the one Ansible connects from) are protected too."""
    if params.get("admin_networks"):
        raise FirewallError("admin_networks: only used with mode=restrict; for mode=ban use protect_networks")
    protect = list(params.get("protect_networks") or []) + list(params.get("admin_addresses") or [])
    if params.get("connecting_address"):
        protect.append(params["connecting_address"])
    return BanPolicy.from_params(dict(params, protect_networks=protect))


def check_ports(wanted: Iterable[int], listening: Iterable[int]) -> None:
    """Refuse ports sshd does not listen on (message names ``ports``)."""
    listening = list(listening)
    missing = sorted(set(wanted) - set(listening))
    if missing:
        raise FirewallError(
            f"ports: sshd does not listen on {', '.join(str(p) for p in missing)} "
            f"(sshd -T lists {', '.join(str(p) for p in listening) or 'none'}); protect the ports sshd uses, "
            "or leave ports unset to follow sshd"
        )


def limited_class(policy: Policy, address: str) -> str | None:
    """How ``address`` is treated: 'allowlist', 'trusted', 'other' (ratelimit) or 'admin'/'dropped'
    (restrict); None when it is not an address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(policy, RestrictPolicy):
        return "admin" if any(ip in n for n in policy.admin_networks) else "dropped"
    if isinstance(policy, BanPolicy):
        return "banned" if any(ip in n for n in policy.addresses) else "protected"
    if any(ip in n for n in policy.allowlist):
        return "allowlist"
    if any(ip in n for n in policy.trusted_networks):
        return "trusted"
    return "other"


def saved_name(mode: str, backend: str, family: str) -> str:
    """File name of a saved script under the config directory."""
    return SAVED[(backend, family)].format(mode=_check_mode(mode))


def render_unit(entries: Iterable[tuple[str, str, str, str, Mapping[str, str]]]) -> str:
    """The systemd unit loading the saved files at boot.

    ``entries``: (mode, backend, family, path, binaries) in load order, where ``binaries`` maps
    ``iptables``/``ip6tables``/``iptables-restore``/``ip6tables-restore``/``nft`` to absolute paths.
    """
    pre, start = [], []
    for mode, backend, family, path, bins in entries:
        if backend == "nftables":
            start.append(f"ExecStart={bins['nft']} -f {path}")
            continue
        tool = "iptables" if family == "ipv4" else "ip6tables"
        jump = IPT_CHAINS[mode][0]
        # A restart must not stack a second jump: drop the old one first ("-": absent is fine).
        pre.append(f"ExecStartPre=-{bins[tool]} -w 10 -D INPUT {IPT_JUMP_MATCH} -j {jump}")
        start.append(f"ExecStart={bins[tool + '-restore']} --noflush --wait=10 {path}")
    return "\n".join(
        [
            "# Written by sshward (sshward_firewall); loads only sshward's own rules.",
            "[Unit]",
            "Description=sshward SSH firewall rules (rate limit / restrict)",
            "DefaultDependencies=no",
            "Wants=network-pre.target",
            "After=systemd-modules-load.service local-fs.target netfilter-persistent.service nftables.service",
            "Before=network-pre.target ssh.service shutdown.target",
            "Conflicts=shutdown.target",
            "",
            "[Service]",
            "Type=oneshot",
            *pre,
            *start,
            "",
            "[Install]",
            "WantedBy=sysinit.target",
            "",
        ]
    )


def removal_revert_steps(
    plans: Iterable[Plan], state_dir: str, name: str
) -> tuple[list[list[str]], list[tuple[str, str]]]:
    """The removal ``plans`` of a loaded mode as steps of an armed revert (sshward.revert), which
    runs later with no standard input: each script is read from a file under ``state_dir``.

    Returns (commands, scripts): every changed plan's argv with the script's path in place of
    ``/dev/stdin``, and the (path, script) files to write before arming.
    """
    commands: list[list[str]] = []
    scripts: list[tuple[str, str]] = []
    for p in plans:
        if not p.changed:
            continue
        path = f"{state_dir.rstrip('/')}/{name}.{p.family}.rules"
        scripts.append((path, p.script))
        commands.append([*(a for a in p.command if a != "/dev/stdin"), path])
    return commands, scripts


_IPT_VERSION = re.compile(r"^ip6?tables v(\d+(?:\.\d+)*)(?: \((legacy|nf_tables)\))?", re.MULTILINE)
_COMPAT_TABLES = {"filter", "nat", "mangle", "raw", "security"}


def detect_backend(
    iptables_version: str | None = None,
    nft_available: bool = False,
    nft_ruleset: str | None = None,
    nftables_enabled: bool = False,
    override: str | None = None,
) -> str:
    """Choose ``iptables`` or ``nftables`` from what the host shows.

    ``iptables_version``: output of ``iptables -V`` (None if missing); ``nft_available``:
    whether ``nft`` exists; ``nft_ruleset``: ``nft list ruleset`` output; ``nftables_enabled``:
    whether ``nftables.service`` is enabled. ``override`` (anything but None/"auto") wins.

    nftables is chosen when the host manages its firewall natively with nft (service enabled,
    or tables other than iptables-nft's and ours), or when there is no iptables; iptables
    (either variant) otherwise, so that sshward sits where docker, fail2ban and the admin's
    own rules already are.
    """
    if override not in (None, "", "auto"):
        return _check_backend(str(override))
    ipt = _IPT_VERSION.search(iptables_version or "")
    if nft_available and nftables_enabled:
        return "nftables"
    if ipt and ipt.group(2) == "legacy":
        return "iptables"
    if nft_available and _native_nft_tables(nft_ruleset or ""):
        return "nftables"
    if ipt:
        return "iptables"
    if nft_available:
        return "nftables"
    raise FirewallError(
        "backend: neither iptables nor nft was found on the host; install the iptables or the "
        "nftables package, or set the backend explicitly"
    )


_TABLE_LINE = re.compile(r"^table\s+(\S+)\s+(\S+)\s*\{", re.MULTILINE)


def _native_nft_tables(ruleset: str) -> list[str]:
    """Tables in ``nft list ruleset`` that neither iptables-nft nor sshward made."""
    out = []
    for fam, name in _TABLE_LINE.findall(ruleset):
        if name in NFT_TABLES.values():
            continue
        if fam in ("ip", "ip6", "arp", "bridge") and name in _COMPAT_TABLES | {"broute"}:
            continue
        out.append(f"{fam} {name}")
    return out


def conflict_message(
    ufw_status: str | None = None,
    firewalld_state: str | None = None,
    setting: str = "ssh_ratelimit_backend",
) -> str | None:
    """A refusal message when ufw or firewalld manage the firewall, else None.

    ``ufw_status``: output of ``ufw status``; ``firewalld_state``: output of
    ``firewall-cmd --state`` or ``systemctl is-active firewalld``. The caller decides whether
    to refuse (e.g. unless the backend was set explicitly).
    """
    if ufw_status and re.search(r"^Status:\s*active\b", ufw_status, re.MULTILINE):
        return (
            "ufw is active: it owns the INPUT chain and rewrites it on every reload, so sshward "
            f"will not add iptables rules beside it. Either set {setting}=nftables (sshward's own "
            "'table inet sshward', which ufw never touches; ufw's rules still apply too), or use "
            "ufw's own 'ufw limit <port>/tcp' and leave sshward's rate limit off, or disable ufw"
        )
    state = (firewalld_state or "").strip().splitlines()
    if state and state[0].strip() in ("running", "active"):
        return (
            "firewalld is active: it owns the host firewall and reloads it on its own, so sshward "
            f"will not add iptables rules beside it. Either set {setting}=nftables (sshward's own "
            "'table inet sshward', which firewalld never touches; its zones still apply too), or use "
            "a firewalld rich rule with 'limit value', or stop firewalld"
        )
    return None
