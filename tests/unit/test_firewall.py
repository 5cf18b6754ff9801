"""Unit tests of sshward.firewall: validation, rendering, idempotence on real listings."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sshward import firewall as fw

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "firewall"
IPT_VARIANTS = sorted(p.name for p in (FIXTURES / "iptables").iterdir())
NFT_SUITES = sorted(p.name for p in (FIXTURES / "nft").iterdir())
NFT_JSON_OK = [s for s in NFT_SUITES if s != "bullseye"]  # nft 0.9.8 JSON lacks set statements

# The policies the fixtures were captured with (see tests/fixtures/firewall/README.md).
RL = fw.RateLimitPolicy(
    ports=[22, 2222],
    trusted_networks=["10.0.0.0/8", "192.0.2.0/25", "192.0.2.128/25", "2001:db8::/32"],
    allowlist=["198.51.100.7", "fd00::1"],
)
RL2 = fw.RateLimitPolicy(ports=[2222], seconds=120, hitcount=3)
RS = fw.RestrictPolicy(admin_networks=["203.0.113.7", "2001:db8:1::/48"])
FAMILIES = ["ipv4", "ipv6"]


def ipt_fixture(variant: str, family: str, name: str) -> str:
    return (FIXTURES / "iptables" / variant / f"{family}-{name}.save").read_text()


def nft_fixture(suite: str, name: str) -> str:
    return (FIXTURES / "nft" / suite / name).read_text()


def golden(name: str) -> str:
    return (FIXTURES / "golden" / name).read_text()


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"trusted_networks": ["10.0.0.0/33"]},
            "trusted_networks: '10.0.0.0/33' is not a valid network (e.g. 10.0.0.0/8)",
        ),
        (
            {"trusted_networks": ["2001:db8::/129"]},
            "trusted_networks: '2001:db8::/129' is not a valid network (e.g. 2001:db8::/32)",
        ),
        (
            {"allowlist": ["bastion.example.com"]},
            "allowlist: 'bastion.example.com' is not a valid network (e.g. 10.0.0.0/8)",
        ),
        ({"hitcount": 0}, "hitcount: 0 is out of range; use 2..20"),
        ({"trusted_hitcount": 1}, "trusted_hitcount: 1 is out of range; use 2..20"),
        ({"hitcount": 21}, "ip_pkt_list_tot"),
        ({"seconds": 0}, "seconds: 0 is out of range; use 1..86400"),
        ({"trusted_seconds": -5}, "trusted_seconds: -5 is out of range"),
        ({"seconds": "soon"}, "seconds: 'soon' is not an integer"),
        ({"ports": [0]}, "ports: 0 is out of range; use 1..65535"),
        ({"ports": [65536]}, "ports: 65536 is out of range; use 1..65535"),
        ({"ports": ["ssh"]}, "ports: 'ssh' is not an integer"),
        ({"ports": []}, "ports: at least one port is required"),
        ({"ports": list(range(1000, 1016))}, "at most 15"),
    ],
)
def test_ratelimit_policy_rejects(kwargs, message):
    with pytest.raises(fw.FirewallError, match=re.escape(message)):
        fw.RateLimitPolicy(**kwargs)


def test_hitcount_above_recent_limit_says_why():
    with pytest.raises(fw.FirewallError) as err:
        fw.RateLimitPolicy(hitcount=25)
    assert "keeps only 20 timestamps per source" in str(err.value)


def test_restrict_requires_admins():
    with pytest.raises(fw.FirewallError, match=r"^admin_networks: at least one address is required"):
        fw.RestrictPolicy(admin_networks=[])


@pytest.mark.parametrize(
    "call",
    [
        lambda: fw.plan(RL, "pf"),
        lambda: fw.plan_removal("ratelimit", "ufw"),
        lambda: fw.detect_backend("iptables v1.8.9 (nf_tables)", override="ipfw"),
        lambda: fw.state_commands("firewalld"),
    ],
)
def test_unknown_backend(call):
    with pytest.raises(fw.FirewallError, match=r"^backend: '\w+' is not supported; use one of iptables, nftables"):
        call()


@pytest.mark.parametrize("mode", ["lockdown", ""])
def test_unknown_mode(mode):
    with pytest.raises(fw.FirewallError, match=r"^mode: .* use one of ratelimit, restrict"):
        fw.plan_iptables_removal(mode, "ipv4", "")


def test_host_bits_warn_and_normalise():
    policy = fw.RateLimitPolicy(trusted_networks=["10.1.2.3/8"])
    assert policy.trusted_networks == (fw.ipaddress.ip_network("10.0.0.0/8"),)
    assert policy.warnings == ("trusted_networks: '10.1.2.3/8' has host bits set; using 10.0.0.0/8",)


@pytest.mark.parametrize("value", [["10.0.0.0/8"], ("10.0.0.0/8",), "10.0.0.0/8", ["10.0.0.0/9", "10.128.0.0/9"]])
def test_networks_accept_iterables_and_collapse(value):
    assert [str(n) for n in fw.RateLimitPolicy(trusted_networks=value).trusted_networks] == ["10.0.0.0/8"]


def test_ports_sorted_and_deduplicated():
    assert fw.RateLimitPolicy(ports=[2222, "22", 22]).ports == (22, 2222)


# ------------------------------------------------------------------ golden rendering


@pytest.mark.parametrize(
    ("policy", "family", "name"),
    [
        (RL, "ipv4", "ratelimit-ipv4.restore"),
        (RL, "ipv6", "ratelimit-ipv6.restore"),
        (RS, "ipv4", "restrict-ipv4.restore"),
        (RS, "ipv6", "restrict-ipv6.restore"),
    ],
)
def test_render_iptables_golden(policy, family, name):
    assert fw.render_iptables(policy, family) == golden(name)


@pytest.mark.parametrize(("policy", "name"), [(RL, "ratelimit.nft"), (RS, "restrict.nft")])
def test_render_nftables_golden(policy, name):
    assert fw.render_nftables(policy) == golden(name)


@pytest.mark.parametrize(
    ("family", "absent"), [("ipv4", ["2001:db8::/32", "fd00::1"]), ("ipv6", ["10.0.0.0/8", "198.51.100.7"])]
)
def test_iptables_splits_families(family, absent):
    script = fw.render_iptables(RL, family)
    assert not [a for a in absent if a in script]


@pytest.mark.parametrize(
    ("family", "lists"),
    [("ipv4", {"sshward_trusted4", "sshward_other4"}), ("ipv6", {"sshward_trusted6", "sshward_other6"})],
)
def test_recent_lists_named_per_family_and_class(family, lists):
    assert set(re.findall(r"--name (\S+)", fw.render_iptables(RL, family))) == lists


@pytest.mark.parametrize(("cls", "seconds", "hitcount"), [("trusted", 60, 4), ("other", 300, 2)])
def test_recent_pair_per_class(cls, seconds, hitcount):
    script = fw.render_iptables(RL, "ipv4")
    assert re.search(
        rf"-m recent --set --name sshward_{cls}4 .*\n.*-m recent --update --seconds {seconds} "
        rf"--hitcount {hitcount} --name sshward_{cls}4 .* -j DROP",
        script,
    )


@pytest.mark.parametrize("policy", [RL, RS])
def test_only_new_tcp_enters_our_chains(policy):
    jumps = [ln for ln in fw.render_iptables(policy, "ipv4").splitlines() if "INPUT" in ln]
    assert jumps == [f"-I INPUT 1 -p tcp -m conntrack --ctstate NEW -j {fw.IPT_CHAINS[policy.mode][0]}"]


@pytest.mark.parametrize(
    ("count", "seconds", "rate"),
    [
        (3, 60, "3/minute"),
        (1, 300, "12/hour"),
        (2, 120, "1/minute"),
        (1, 1, "1/second"),
        (19, 86400, "19/day"),
        (3, 7, "259200/week"),
        (1, 86399, "7/week"),
    ],
)
def test_nft_rate(count, seconds, rate):
    assert fw._nft_rate(count, seconds) == rate


@pytest.mark.parametrize(
    ("policy", "rule"),
    [
        (
            RL,
            "update @meter_trusted4 { ip saddr limit rate over 3/minute burst 3 packets } "
            "add @blocked_trusted4 { ip saddr } drop",
        ),
        (
            RL,
            "update @meter_other6 { ip6 saddr limit rate over 12/hour burst 1 packets } "
            "add @blocked_other6 { ip6 saddr } drop",
        ),
        (RL, "ip saddr @blocked_other4 update @blocked_other4 { ip saddr } drop"),
        (RL, "tcp dport { 22, 2222 } ct state new jump ssh_new"),
        (RS, "tcp dport 22 ct state new jump ssh_new"),
        (RS, 'iif "lo" return'),
    ],
)
def test_nft_rules(policy, rule):
    assert f"\t\t{rule}\n" in fw.render_nftables(policy)


@pytest.mark.parametrize(("policy", "table"), [(RL, "sshward"), (RS, "sshward_restrict")])
def test_nft_script_replaces_only_our_table(policy, table):
    script = fw.render_nftables(policy)
    head = script.splitlines()[:3]
    assert head == [f"add table inet {table}", f"delete table inet {table}", f"table inet {table} {{"]
    assert set(re.findall(r"^(?:add |delete )?table (\S+ \S+)", script, re.M)) == {f"inet {table}"}
    assert "flush" not in script


def test_nft_trusted_chain_absent_without_trusted_networks():
    script = fw.render_nftables(RL2)
    assert "trusted" not in script


def test_restrict_without_loopback():
    script = fw.render_iptables(fw.RestrictPolicy(admin_networks=["192.0.2.1"], allow_loopback=False), "ipv4")
    assert "-i lo" not in script


# ------------------------------------------------------------------ iptables idempotence on real saves


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("variant", IPT_VARIANTS)
def test_fresh_host_changes(variant, family):
    plan = fw.plan_iptables(RL, family, ipt_fixture(variant, family, "baseline"))
    assert (plan.changed, plan.script) == (True, golden(f"ratelimit-{family}.restore"))


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("variant", IPT_VARIANTS)
def test_loaded_rules_are_unchanged(variant, family):
    plan = fw.plan_iptables(RL, family, ipt_fixture(variant, family, "ratelimit"))
    assert (plan.changed, plan.script) == (False, "")


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("variant", IPT_VARIANTS)
def test_before_equals_after_when_unchanged(variant, family):
    plan = fw.plan_iptables(RL, family, ipt_fixture(variant, family, "ratelimit"))
    assert plan.before == plan.after


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("variant", IPT_VARIANTS)
def test_other_policy_on_loaded_rules_changes(variant, family):
    assert fw.plan_iptables(RL2, family, ipt_fixture(variant, family, "ratelimit")).changed


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("variant", IPT_VARIANTS)
def test_duplicate_jumps_are_all_removed_and_one_inserted(variant, family):
    script = fw.plan_iptables(RL, family, ipt_fixture(variant, family, "duplicate-jumps")).script
    input_lines = [ln for ln in script.splitlines() if " INPUT " in ln]
    assert input_lines == [
        "-D INPUT -p tcp -m conntrack --ctstate NEW -j SSHWARD-RATELIMIT",
        "-D INPUT -j SSHWARD-RATELIMIT",
        "-D INPUT -p tcp -m conntrack --ctstate NEW -j SSHWARD-RATELIMIT",
        "-I INPUT 1 -p tcp -m conntrack --ctstate NEW -j SSHWARD-RATELIMIT",
    ]


@pytest.mark.parametrize("mode_policy", [RL2, RS])
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("variant", IPT_VARIANTS)
def test_both_modes_coexist_unchanged(variant, family, mode_policy):
    assert not fw.plan_iptables(mode_policy, family, ipt_fixture(variant, family, "both")).changed


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("variant", IPT_VARIANTS)
def test_jump_behind_a_foreign_rule_is_moved(variant, family):
    text = ipt_fixture(variant, family, "ratelimit").replace(
        "-A INPUT -p tcp -m conntrack --ctstate NEW -j SSHWARD-RATELIMIT",
        "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n-A INPUT -p tcp -m conntrack --ctstate NEW -j SSHWARD-RATELIMIT",
    )
    plan = fw.plan_iptables(RL, family, text)
    assert plan.changed
    assert plan.script.count("-I INPUT 1 ") == 1


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("variant", IPT_VARIANTS)
def test_tampered_chain_changes(variant, family):
    text = ipt_fixture(variant, family, "ratelimit").replace("--hitcount 2 ", "--hitcount 3 ")
    assert fw.plan_iptables(RL, family, text).changed


@pytest.mark.parametrize("family", FAMILIES)
def test_stale_chain_of_ours_is_deleted(family):
    text = ipt_fixture("bookworm-nft", family, "ratelimit").replace(
        ":SSHWARD-RL-TRUSTED - [0:0]", ":SSHWARD-RL-TRUSTED - [0:0]\n:SSHWARD-RL-OLD - [0:0]"
    )
    script = fw.plan_iptables(RL, family, text).script
    assert ("-F SSHWARD-RL-OLD" in script, "-X SSHWARD-RL-OLD" in script) == (True, True)


def test_counters_in_save_are_ignored():
    text = ipt_fixture("bookworm-legacy", "ipv4", "ratelimit")
    text = re.sub(r"^-A ", "[12:3456] -A ", text, flags=re.M)
    assert not fw.plan_iptables(RL, "ipv4", text).changed


# ------------------------------------------------------------------ docker's rules are never referenced

SCRIPT_LINE = re.compile(
    r"^(\*filter|COMMIT|:SSHWARD-[A-Z-]+ - \[0:0\]|-[FX] SSHWARD-[A-Z-]+|-A SSHWARD-[A-Z-]+ .*"
    r"|-[DI] INPUT (1 )?(-p tcp -m conntrack --ctstate NEW )?-j SSHWARD-[A-Z-]+)$"
)


def _all_plans(variant: str, family: str) -> list[fw.Plan]:
    plans = []
    for name in ("baseline", "ratelimit", "duplicate-jumps", "both"):
        text = ipt_fixture(variant, family, name)
        plans += [fw.plan_iptables(p, family, text) for p in (RL, RL2, RS)]
        plans += [fw.plan_iptables_removal(m, family, text) for m in fw.MODES]
    return plans


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("variant", IPT_VARIANTS)
def test_scripts_touch_only_our_chains(variant, family):
    bad = [ln for p in _all_plans(variant, family) for ln in p.script.splitlines() if not SCRIPT_LINE.match(ln)]
    assert bad == []


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("variant", IPT_VARIANTS)
def test_scripts_never_name_docker_or_nat(variant, family):
    scripts = "".join(p.script for p in _all_plans(variant, family))
    assert [w for w in ("DOCKER", "*nat", "-F INPUT", "MASQUERADE") if w in scripts] == []


@pytest.mark.parametrize("variant", IPT_VARIANTS)
def test_docker_rules_are_parsed(variant):
    save = fw.parse_iptables_save(ipt_fixture(variant, "ipv4", "ratelimit"))
    assert "DOCKER_OUTPUT" in save.chains["nat"]


# ------------------------------------------------------------------ iptables removal


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("variant", IPT_VARIANTS)
def test_removal_keeps_the_other_mode(variant, family):
    script = fw.plan_iptables_removal("ratelimit", family, ipt_fixture(variant, family, "both")).script
    assert script == (
        "*filter\n"
        "-D INPUT -p tcp -m conntrack --ctstate NEW -j SSHWARD-RATELIMIT\n"
        "-F SSHWARD-RATELIMIT\n-F SSHWARD-RL-OTHER\n-F SSHWARD-RL-TRUSTED\n"
        "-X SSHWARD-RATELIMIT\n-X SSHWARD-RL-OTHER\n-X SSHWARD-RL-TRUSTED\n"
        "COMMIT\n"
    )


@pytest.mark.parametrize("mode", fw.MODES)
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("variant", IPT_VARIANTS)
def test_removal_on_clean_host_is_a_noop(variant, family, mode):
    plan = fw.plan_iptables_removal(mode, family, ipt_fixture(variant, family, "baseline"))
    assert (plan.changed, plan.script) == (False, "")


def test_removal_drops_foreign_references_first():
    text = ipt_fixture("bookworm-nft", "ipv4", "ratelimit").replace(
        "-A DOCKER-USER -j RETURN", "-A DOCKER-USER -j SSHWARD-RATELIMIT\n-A DOCKER-USER -j RETURN"
    )
    lines = fw.plan_iptables_removal("ratelimit", "ipv4", text).script.splitlines()
    assert lines.index("-D DOCKER-USER -j SSHWARD-RATELIMIT") < lines.index("-X SSHWARD-RATELIMIT")


@pytest.mark.parametrize("text", ["-A INPUT -j ACCEPT\n", "*filter\n-Z INPUT\nCOMMIT\n"])
def test_unparsable_save_raises(text):
    with pytest.raises(fw.FirewallError, match=r"^iptables-save output, line \d+"):
        fw.parse_iptables_save(text)


# ------------------------------------------------------------------ nftables idempotence on real listings


@pytest.mark.parametrize(
    ("policy", "name"),
    [(RL, "ratelimit.nft"), (RL2, "ratelimit-live.nft"), (RS, "restrict.nft")]
    + [(RL, "ratelimit.json"), (RL2, "ratelimit-live.json"), (RS, "restrict.json")],
)
@pytest.mark.parametrize("suite", NFT_SUITES)
def test_nft_loaded_table_unchanged(suite, policy, name):
    if suite not in NFT_JSON_OK and name in ("ratelimit.json", "ratelimit-live.json"):
        pytest.skip("nft 0.9.8 JSON omits statements inside set updates (covered below)")
    plan = fw.plan_nftables(policy, nft_fixture(suite, name))
    assert (plan.changed, plan.script) == (False, "")


@pytest.mark.parametrize("name", ["ratelimit.json", "ratelimit-live.json"])
def test_nft_old_json_without_limits_is_a_change(name):
    assert fw.plan_nftables(RL if name == "ratelimit.json" else RL2, nft_fixture("bullseye", name)).changed


@pytest.mark.parametrize("name", ["ratelimit.nft", "ratelimit.json", "restrict.nft", "restrict.json"])
@pytest.mark.parametrize("suite", NFT_SUITES)
def test_nft_other_policy_changes(suite, name):
    other = (
        fw.RateLimitPolicy(ports=[22, 2222], seconds=300, hitcount=3)
        if name.startswith("ratelimit")
        else fw.RestrictPolicy(admin_networks=["203.0.113.8"])
    )
    assert fw.plan_nftables(other, nft_fixture(suite, name)).changed


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"timeout": 300', '"timeout": 301'),
        ('"prio": -10', '"prio": 0'),
        ('"drop": null', '"accept": null'),
        ('"len": 8', '"len": 9'),
    ],
)
@pytest.mark.parametrize("suite", NFT_JSON_OK)
def test_nft_json_tampering_changes(suite, old, new):
    text = nft_fixture(suite, "ratelimit.json")
    text = json.dumps(json.loads(text))
    assert old in text
    assert fw.plan_nftables(RL, text.replace(old, new, 1)).changed


def test_nft_extra_rule_changes():
    data = json.loads(nft_fixture("trixie", "ratelimit.json"))
    rule = next(o for o in data["nftables"] if "rule" in o)
    data["nftables"].append({"rule": dict(rule["rule"], expr=[{"accept": None}])})
    assert fw.plan_nftables(RL, json.dumps(data)).changed


@pytest.mark.parametrize("listing", [None, "", "\n"])
def test_nft_absent_table(listing):
    plan = fw.plan_nftables(RL, listing)
    assert (plan.changed, plan.script, plan.before) == (True, golden("ratelimit.nft"), "")


def test_nft_listing_of_other_table_is_absent():
    plan = fw.plan_nftables(RL, nft_fixture("trixie", "restrict.json"))
    assert (plan.changed, plan.before) == (True, "")


@pytest.mark.parametrize(("mode", "name"), [("ratelimit", "ratelimit.json"), ("restrict", "restrict.nft")])
@pytest.mark.parametrize("suite", NFT_SUITES)
def test_nft_removal(suite, mode, name):
    table = fw.NFT_TABLES[mode]
    plan = fw.plan_nftables_removal(mode, nft_fixture(suite, name))
    assert (plan.changed, plan.script) == (True, f"add table inet {table}\ndelete table inet {table}\n")


@pytest.mark.parametrize("mode", fw.MODES)
def test_nft_removal_when_absent(mode):
    assert not fw.plan_nftables_removal(mode, None).changed


@pytest.mark.parametrize(
    ("text", "seconds"), [("1m", 60), ("5m", 300), ("2m", 120), ("1h2m3s", 3723), ("1d", 86400), ("60s", 60)]
)
def test_text_duration(text, seconds):
    assert fw._text_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "prio"),
    [("filter - 10", -10), ("filter", 0), ("-20", -20), ("raw + 5", -295), ("filter -10", -10)],
)
def test_text_priority(text, prio):
    assert fw._text_priority(text) == prio


# ------------------------------------------------------------------ front-end helpers


def test_plan_iptables_gives_two_families():
    assert [(p.family, p.command) for p in fw.plan(RL, "iptables")] == [
        ("ipv4", ("iptables-restore", "--noflush", "--wait=10")),
        ("ipv6", ("ip6tables-restore", "--noflush", "--wait=10")),
    ]


def test_plan_nftables_gives_one_transaction():
    assert [(p.family, p.command) for p in fw.plan(RL, "nftables")] == [("inet", ("nft", "-f", "/dev/stdin"))]


@pytest.mark.parametrize(
    ("backend", "check"),
    [
        ("iptables", ("iptables-restore", "--noflush", "--wait=10", "--test")),
        ("nftables", ("nft", "-c", "-f", "/dev/stdin")),
    ],
)
def test_check_commands(backend, check):
    assert fw.plan(RS, backend)[0].check_command == check


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("iptables",), {"ipv4": ("iptables-save",), "ipv6": ("ip6tables-save",)}),
        (("nftables",), {"inet": ("nft", "-j", "list", "table", "inet", "sshward")}),
        (("nftables", "restrict"), {"inet": ("nft", "-j", "list", "table", "inet", "sshward_restrict")}),
        (
            ("nftables", "ratelimit", "nftables v0.9.8 (E.D.S.)"),
            {"inet": ("nft", "list", "table", "inet", "sshward")},
        ),
        (
            ("nftables", "ratelimit", "nftables v1.0.6 (Lester Gooch #5)"),
            {"inet": ("nft", "-j", "list", "table", "inet", "sshward")},
        ),
    ],
)
def test_state_commands(args, expected):
    assert fw.state_commands(*args) == expected


def test_diff_shows_our_rules():
    (d4, d6) = fw.diff(fw.plan(RL, "iptables", iptables_save=ipt_fixture("trixie-nft", "ipv4", "baseline")))
    assert (d4["before"], d4["after_header"]) == ("", "iptables: ratelimit chains (after)")
    assert "-A SSHWARD-RL-OTHER -m recent --update --seconds 300 --hitcount 2" in d4["after"]


def test_diff_nft():
    (d,) = fw.diff(fw.plan(RS, "nftables", nft_json=nft_fixture("bookworm", "restrict.json")))
    assert d["before"] == d["after"]


@pytest.mark.parametrize(
    ("kwargs", "backend"),
    [
        ({"iptables_version": "iptables v1.8.9 (nf_tables)"}, "iptables"),
        ({"iptables_version": "iptables v1.8.9 (legacy)", "nft_available": True}, "iptables"),
        (
            {
                "iptables_version": "iptables v1.8.9 (nf_tables)",
                "nft_available": True,
                "nftables_enabled": True,
            },
            "nftables",
        ),
        (
            {
                "iptables_version": "iptables v1.8.9 (nf_tables)",
                "nft_available": True,
                "nft_ruleset": "table inet filter {\n\tchain input {\n\t}\n}\n",
            },
            "nftables",
        ),
        (
            {
                "iptables_version": "iptables v1.8.9 (nf_tables)",
                "nft_available": True,
                "nft_ruleset": "table ip filter {\n}\ntable ip nat {\n}\ntable inet sshward {\n}\n",
            },
            "iptables",
        ),
        ({"iptables_version": "iptables v1.4.21", "nft_available": False}, "iptables"),
        ({"iptables_version": None, "nft_available": True}, "nftables"),
        ({"iptables_version": "iptables v1.8.9 (legacy)", "override": "nftables"}, "nftables"),
        ({"iptables_version": "iptables v1.8.9 (nf_tables)", "override": "auto"}, "iptables"),
    ],
)
def test_detect_backend(kwargs, backend):
    assert fw.detect_backend(**kwargs) == backend


def test_detect_backend_nothing_found():
    with pytest.raises(fw.FirewallError, match="^backend: neither iptables nor nft was found"):
        fw.detect_backend(None, nft_available=False)


@pytest.mark.parametrize(
    ("kwargs", "prefix"),
    [
        ({"ufw_status": "Status: active\n\nTo   Action  From\n"}, "ufw is active: "),
        ({"firewalld_state": "running\n"}, "firewalld is active: "),
        ({"firewalld_state": "active"}, "firewalld is active: "),
    ],
)
def test_conflict_message(kwargs, prefix):
    msg = fw.conflict_message(**kwargs)
    assert msg is not None and msg.startswith(prefix) and "set ssh_ratelimit_backend=nftables" in msg


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"ufw_status": "Status: inactive\n"},
        {"firewalld_state": "not running\n"},
        {"firewalld_state": "inactive"},
        {"ufw_status": "ERROR: You need to be root to run this script"},
    ],
)
def test_no_conflict(kwargs):
    assert fw.conflict_message(**kwargs) is None


def test_conflict_message_names_the_setting():
    assert "set sshward_backend=nftables" in (fw.conflict_message("Status: active", setting="sshward_backend") or "")


@pytest.mark.parametrize("text", ["10.0.0.0/8", "2001:0DB8::/32", "192.0.2.1"])
def test_no_warning_for_canonical_or_spelled_out_networks(text):
    assert fw.RateLimitPolicy(allowlist=[text]).warnings == ()


def test_from_params_ignores_unknown_and_none():
    params = {"trusted_networks": ["10.0.0.0/8"], "hitcount": None, "state": "present", "ports": [2222]}
    assert fw.RateLimitPolicy.from_params(params) == fw.RateLimitPolicy(trusted_networks=["10.0.0.0/8"], ports=[2222])


def test_restrict_from_params():
    assert fw.RestrictPolicy.from_params({"admin_networks": ["203.0.113.7"], "backend": "auto"}) == fw.RestrictPolicy(
        admin_networks=["203.0.113.7/32"]
    )


@pytest.mark.parametrize("backend", fw.BACKENDS)
def test_removal_revert_steps_read_scripts_from_files(backend: str) -> None:
    loaded = fw.RestrictPolicy(admin_networks=("203.0.113.7/32",))
    if backend == "iptables":
        rules = [ln for ln in fw.render_iptables(loaded, "ipv4").splitlines() if ln.startswith((":", "-A"))]
        live = "\n".join(["*filter", ":INPUT ACCEPT [0:0]", *rules, "COMMIT", ""])
        plans = fw.plan_removal("restrict", backend, iptables_save=live, ip6tables_save="")
    else:
        plans = fw.plan_removal("restrict", backend, nft_json="table inet sshward_restrict {\n}\n")
    commands, scripts = fw.removal_revert_steps(plans, "/var/lib/sshward/revert/", "lockdown-restrict")
    assert commands and len(commands) == len(scripts)
    for argv, (path, script) in zip(commands, scripts, strict=True):
        assert argv[-1] == path and "/dev/stdin" not in argv
        assert path.startswith("/var/lib/sshward/revert/lockdown-restrict.") and script


def test_removal_revert_steps_skip_unchanged_plans() -> None:
    plans = fw.plan_removal("restrict", "nftables", nft_json=None)
    assert fw.removal_revert_steps(plans, "/x", "n") == ([], [])


def test_both_policies_build_from_params_ignoring_unknown_and_none() -> None:
    params = {"ports": None, "admin_networks": ["203.0.113.7"], "hitcount": 3, "bogus": 1}
    assert fw.RestrictPolicy.from_params(params).ports == (22,)
    assert fw.RateLimitPolicy.from_params(params).hitcount == 3
