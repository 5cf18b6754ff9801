"""Unit tests of sshward.sshd_config (parser, read order, planner)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sshward import sshd_config as sc

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sshd_config"
DEBIAN12 = (FIXTURES / "debian12_sshd_config").read_text()
CLOUD_INIT = (FIXTURES / "50-cloud-init.conf").read_text()
MAIN = "/etc/ssh/sshd_config"
DROPIN = "/etc/ssh/sshd_config.d/50-cloud-init.conf"


def tree_of(files: dict[str, str | bytes]) -> sc.ConfigTree:
    fs = sc.MemoryFS(files)
    return sc.load_tree(MAIN, fs.read, fs.listdir)


def replan(files: dict[str, str | bytes], plan: sc.Plan) -> dict[str, str | bytes]:
    out = dict(files)
    out.update(plan.files)
    return out


# ----------------------------------------------------------------- lossless parsing


def test_debian12_round_trip_is_byte_identical() -> None:
    assert sc.parse(DEBIAN12).render() == DEBIAN12


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n",
        "Port 22",
        "Port 22\r\nPermitRootLogin no\n",
        "  \tPort=22  \n#comment\n\n",
        "Banner /etc/issue#x\n",
        'AllowUsers "a b" c\n',
        "X" * 200_000 + "\n",
        "Port 22\rPermitRootLogin no\n",
        "PermitRootLogin no\r\r\n\r\n",
    ],
)
def test_round_trip_text(text: str) -> None:
    assert sc.parse(text).render() == text


@pytest.mark.parametrize(
    "data",
    [
        b"Banner /etc/\xff\xfeissue\n",
        b"# caf\xc3\xa9 \xe9\n",
        b"AllowUsers \x80\x81\r\n" * 3,
    ],
)
def test_round_trip_non_utf8_bytes(data: bytes) -> None:
    assert sc.to_bytes(sc.parse(data).render()) == data


@pytest.mark.parametrize("data", [b"Port 22\x00\nPermitRootLogin yes\n", "Port\x0022"])
def test_nul_byte_is_a_clear_value_error(data: str | bytes) -> None:
    with pytest.raises(ValueError, match="NUL byte"):
        sc.parse(data)


@pytest.mark.parametrize(
    ("line", "keyword", "args"),
    [
        ("PasswordAuthentication no\n", "PasswordAuthentication", ["no"]),
        ("passwordauthentication=no\n", "passwordauthentication", ["no"]),
        ("PasswordAuthentication = no\n", "PasswordAuthentication", ["no"]),
        ("  Port\t2222  \r\n", "Port", ["2222"]),
        ('AllowUsers "alice smith" bob\n', "AllowUsers", ["alice smith", "bob"]),
        ("AllowUsers 'x y'\n", "AllowUsers", ["x y"]),
        ('Banner "/etc/a\\"b"\n', "Banner", ['/etc/a"b']),
        ("Banner /etc/issue#1\n", "Banner", ["/etc/issue#1"]),
        ("PermitRootLogin no # trailing\n", "PermitRootLogin", ["no"]),
        ("AcceptEnv LANG LC_*\n", "AcceptEnv", ["LANG", "LC_*"]),
    ],
)
def test_tokenizer(line: str, keyword: str, args: list[str]) -> None:
    parsed = sc.parse_line(line)
    assert (parsed.keyword, parsed.args) == (keyword, args)


@pytest.mark.parametrize("line", ["# Port 22\n", "   #Port 22\n", "\n", "   \t\r\n", "#\n"])
def test_comments_and_blanks_have_no_keyword(line: str) -> None:
    assert sc.parse_line(line).keyword is None


def test_trailing_comment_is_flagged() -> None:
    assert sc.parse_line("PermitRootLogin no # x\n").trailing_comment


def test_unclosed_quote_is_flagged_not_raised() -> None:
    assert sc.parse_line('Banner "/etc/issue\n').error == "invalid quotes"


@pytest.mark.parametrize("arg", ["plain", "two words", 'quo"te', "back\\slash", "#hash", ""])
def test_quote_arg_round_trips_through_split_args(arg: str) -> None:
    assert sc.split_args(sc.quote_arg(arg)) == ([arg], False)


@pytest.mark.parametrize(
    ("given", "expected"),
    [("passwordauthentication", "PasswordAuthentication"), ("MACS", "MACs"), ("NotAKeyword", "NotAKeyword")],
)
def test_canonical_keyword(given: str, expected: str) -> None:
    assert sc.canonical(given) == expected


# ----------------------------------------------------------------- read order


def test_include_is_read_at_its_line() -> None:
    tree = tree_of({MAIN: DEBIAN12, DROPIN: CLOUD_INIT})
    keys = [(d.path, d.keyword) for d in tree.order]
    assert keys.index((DROPIN, "PasswordAuthentication")) == keys.index((MAIN, "Include")) + 1


def test_include_glob_is_lexical_and_relative_to_etc_ssh() -> None:
    tree = tree_of(
        {
            MAIN: "Include conf.d/*.conf\n",
            "/etc/ssh/conf.d/20-b.conf": "Port 2\n",
            "/etc/ssh/conf.d/10-a.conf": "Port 1\n",
            "/etc/ssh/conf.d/.hidden.conf": "Port 3\n",
            "/etc/ssh/conf.d/30-c.txt": "Port 4\n",
        }
    )
    assert tree.effective("Port") == [("1",), ("2",)]


def test_include_without_match_is_skipped() -> None:
    tree = tree_of({MAIN: "Include /nonexistent/*.conf\nPort 22\n"})
    assert tree.effective("port") == [("22",)]


def test_include_inside_match_applies_within_match() -> None:
    tree = tree_of(
        {
            MAIN: "PasswordAuthentication no\nMatch User bob\n  Include /etc/ssh/bob.conf\n",
            "/etc/ssh/bob.conf": "PasswordAuthentication yes\n",
        }
    )
    (inc,) = [d for d in tree.order if d.path == "/etc/ssh/bob.conf"]
    assert inc.match == sc.MatchContext(MAIN, 2, ("User", "bob"))


def test_match_in_included_file_ends_with_that_file() -> None:
    tree = tree_of(
        {
            MAIN: "Include /etc/ssh/a.conf\nPermitRootLogin no\n",
            "/etc/ssh/a.conf": "Match User x\nX11Forwarding no\n",
        }
    )
    (prl,) = [d for d in tree.order if d.keyword == "PermitRootLogin"]
    assert prl.match is None


def test_first_value_wins() -> None:
    tree = tree_of({MAIN: DEBIAN12, DROPIN: CLOUD_INIT + "KbdInteractiveAuthentication yes\n"})
    assert tree.effective("KbdInteractiveAuthentication") == [("yes",)]


def test_alias_competes_for_first_value() -> None:
    tree = tree_of({MAIN: "ChallengeResponseAuthentication yes\nKbdInteractiveAuthentication no\n"})
    assert tree.effective("KbdInteractiveAuthentication") == [("yes",)]


def test_accumulating_keywords_add_up() -> None:
    tree = tree_of({MAIN: "AllowUsers a\nInclude /etc/ssh/x.conf\nAllowUsers b\n", "/etc/ssh/x.conf": "AllowUsers c\n"})
    assert tree.effective("AllowUsers") == [("a",), ("c",), ("b",)]


def test_include_recursion_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="Include nested"):
        tree_of({MAIN: "Include /etc/ssh/sshd_config\n"})


def test_match_block_lines_are_not_global() -> None:
    tree = tree_of({MAIN: "Match User bob\nPasswordAuthentication yes\n"})
    assert tree.effective("PasswordAuthentication") == []


def test_match_all_lines_apply_globally() -> None:
    tree = tree_of({MAIN: "Match User bob\nX11Forwarding no\nMatch all\nPermitTTY no\n"})
    assert tree.effective("PermitTTY") == [("no",)]


# ----------------------------------------------------------------- planning


def test_cloud_init_dropin_is_beaten_by_insertion_before_include() -> None:
    files: dict[str, str | bytes] = {MAIN: DEBIAN12, DROPIN: CLOUD_INIT}
    plan = sc.plan_settings(tree_of(files), {"PasswordAuthentication": "no"})
    after = tree_of(replan(files, plan))
    assert after.first("PasswordAuthentication") is not None
    first = after.first("PasswordAuthentication")
    assert (first.path if first else None, first.args if first else None) == (MAIN, ("no",))


def test_cloud_init_line_reported_dead_and_dropin_untouched() -> None:
    plan = sc.plan_settings(tree_of({MAIN: DEBIAN12, DROPIN: CLOUD_INIT}), {"PasswordAuthentication": "no"})
    assert ([(d.path, d.lineno) for d in plan.dead], DROPIN in plan.files) == ([(DROPIN, 1)], False)


def test_insert_goes_right_before_include() -> None:
    plan = sc.plan_settings(tree_of({MAIN: DEBIAN12, DROPIN: CLOUD_INIT}), {"PasswordAuthentication": "no"})
    lines = plan.files[MAIN].splitlines()
    assert lines[lines.index("Include /etc/ssh/sshd_config.d/*.conf") - 1] == "PasswordAuthentication no"


def test_existing_first_line_is_edited_in_place() -> None:
    text = "Port 22\nPermitRootLogin yes\nX11Forwarding yes\n"
    plan = sc.plan_settings(tree_of({MAIN: text}), {"permitrootlogin": "no"})
    assert plan.files[MAIN] == "Port 22\nPermitRootLogin no\nX11Forwarding yes\n"


def test_later_duplicates_in_main_are_removed() -> None:
    text = "PermitRootLogin yes\nPort 22\npermitrootlogin=no\n"
    plan = sc.plan_settings(tree_of({MAIN: text}), {"PermitRootLogin": "prohibit-password"})
    assert plan.files[MAIN] == "PermitRootLogin prohibit-password\nPort 22\n"


def test_main_line_overridden_by_dropin_is_replaced_by_earlier_insert() -> None:
    files: dict[str, str | bytes] = {
        MAIN: DEBIAN12,
        "/etc/ssh/sshd_config.d/10-x.conf": "KbdInteractiveAuthentication yes\n",
    }
    plan = sc.plan_settings(tree_of(files), {"KbdInteractiveAuthentication": "no"})
    assert plan.files[MAIN].count("KbdInteractiveAuthentication no") == 1


def test_trailing_match_block_gets_globals_before_it() -> None:
    text = "Port 22\nMatch User bob\n  X11Forwarding no\n"
    plan = sc.plan_settings(tree_of({MAIN: text}), {"PermitRootLogin": "no", "MaxAuthTries": "3"})
    assert plan.files[MAIN] == "Port 22\nPermitRootLogin no\nMaxAuthTries 3\nMatch User bob\n  X11Forwarding no\n"


def test_match_block_value_is_not_touched() -> None:
    text = "Match User bob\n  PasswordAuthentication yes\n"
    plan = sc.plan_settings(tree_of({MAIN: text}), {"PasswordAuthentication": "no"})
    assert plan.files[MAIN] == "PasswordAuthentication no\nMatch User bob\n  PasswordAuthentication yes\n"


def test_hint_comment_places_insert_after_it() -> None:
    text = "#PermitRootLogin prohibit-password\nUsePAM yes\nInclude /x/*.conf\n"
    plan = sc.plan_settings(tree_of({MAIN: text}), {"PermitRootLogin": "no"})
    assert plan.files[MAIN].splitlines()[1] == "PermitRootLogin no"


def test_accumulating_keyword_in_dropin_is_neutralised() -> None:
    files: dict[str, str | bytes] = {MAIN: DEBIAN12, DROPIN: "AllowUsers mallory\n"}
    plan = sc.plan_settings(tree_of(files), {"AllowUsers": ["alice", "bob"]})
    assert plan.files[DROPIN] == "# sshward: AllowUsers mallory\n"


def test_accumulating_effective_value_is_exactly_ours() -> None:
    files: dict[str, str | bytes] = {MAIN: "AllowUsers root\n" + DEBIAN12, DROPIN: "AllowUsers mallory\n"}
    plan = sc.plan_settings(tree_of(files), {"AllowUsers": ["alice", "bob"]})
    assert tree_of(replan(files, plan)).effective("AllowUsers") == [("alice", "bob")]


def test_hostkey_list_gives_one_line_each_in_order() -> None:
    files: dict[str, str | bytes] = {MAIN: DEBIAN12}
    keys = ["/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_rsa_key"]
    plan = sc.plan_settings(tree_of(files), {"HostKey": keys})
    assert tree_of(replan(files, plan)).effective("HostKey") == [(k,) for k in keys]


def test_comma_list_keyword_is_joined() -> None:
    plan = sc.plan_settings(tree_of({MAIN: ""}), {"Ciphers": ["aes256-ctr", "aes128-ctr"]})
    assert plan.files[MAIN] == "Ciphers aes256-ctr,aes128-ctr\n"


def test_none_removes_from_managed_and_reports_remaining() -> None:
    files: dict[str, str | bytes] = {
        MAIN: DEBIAN12.replace("X11Forwarding yes", "X11Forwarding no"),
        DROPIN: "X11Forwarding yes\n",
    }
    plan = sc.plan_settings(tree_of(files), {"X11Forwarding": None})
    left = [ln.keyword for ln in sc.parse(plan.files[MAIN]).lines if ln.key == "x11forwarding"]
    assert (left, [r.path for r in plan.remaining]) == ([], [DROPIN])


SCENARIOS: list[tuple[str, dict[str, str | bytes], dict[str, sc.SettingValue]]] = [
    (
        "cloud-init",
        {MAIN: DEBIAN12, DROPIN: CLOUD_INIT},
        {"PasswordAuthentication": "no", "PermitRootLogin": "no"},
    ),
    (
        "accumulating",
        {MAIN: DEBIAN12, DROPIN: "AllowUsers x\nAllowGroups y\n"},
        {"AllowUsers": ["alice"], "AllowGroups": None, "AcceptEnv": ["LANG"]},
    ),
    (
        "match",
        {MAIN: "Port 22\nMatch User bob\n  X11Forwarding no\n"},
        {"X11Forwarding": "no", "Port": ["2222"]},
    ),
    ("crlf", {MAIN: "Port 22\r\nPermitRootLogin yes\r\n"}, {"PermitRootLogin": "no", "MaxSessions": "2"}),
    ("no-eol", {MAIN: "Port 22"}, {"MaxAuthTries": "3", "Subsystem": ["sftp internal-sftp"]}),
    ("crypto", {MAIN: DEBIAN12}, {"KexAlgorithms": ["curve25519-sha256"], "HostKey": ["/a", "/b"]}),
]


@pytest.mark.parametrize(("name", "files", "settings"), SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_plan_is_idempotent(name: str, files: dict[str, str | bytes], settings: dict[str, sc.SettingValue]) -> None:
    plan = sc.plan_settings(tree_of(files), settings)
    assert sc.plan_settings(tree_of(replan(files, plan)), settings).files == {}


@pytest.mark.parametrize(("name", "files", "settings"), SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_plan_reaches_requested_values(
    name: str, files: dict[str, str | bytes], settings: dict[str, sc.SettingValue]
) -> None:
    after = tree_of(replan(files, sc.plan_settings(tree_of(files), settings)))
    wanted = {k: [tuple(a) for a in sc.desired_lines(k, v)] for k, v in settings.items()}
    got = {k: [tuple(a) for a in after.effective(k)] if v is not None else [] for k, v in settings.items()}
    assert got == wanted


def test_plan_keeps_crlf_line_endings() -> None:
    plan = sc.plan_settings(tree_of({MAIN: "Port 22\r\nPermitRootLogin yes\r\n"}), {"PermitRootLogin": "no"})
    assert plan.files[MAIN] == "Port 22\r\nPermitRootLogin no\r\n"


def test_plan_appends_after_line_without_newline() -> None:
    plan = sc.plan_settings(tree_of({MAIN: "Port 22"}), {"MaxAuthTries": "3"})
    assert plan.files[MAIN] == "Port 22\nMaxAuthTries 3\n"


def test_plan_never_writes_into_match_block() -> None:
    text = "Match Address 10.0.0.0/8\n  PermitRootLogin yes\nMatch all\n"
    plan = sc.plan_settings(tree_of({MAIN: text}), {"PermitRootLogin": "no"})
    assert plan.files[MAIN].startswith("PermitRootLogin no\nMatch Address")


def test_no_change_plan_reports_no_changes() -> None:
    plan = sc.plan_settings(tree_of({MAIN: "PermitRootLogin no\n"}), {"PermitRootLogin": "no"})
    assert (plan.changed, plan.summary) == (False, "no changes")


@pytest.mark.parametrize(
    "value",
    ["no\nPermitRootLogin yes", "no\rx", "no # comment", "", "a\x00b"],
)
def test_hostile_values_are_rejected(value: str) -> None:
    with pytest.raises(ValueError):
        sc.plan_settings(tree_of({MAIN: ""}), {"PasswordAuthentication": value})


def test_values_with_spaces_are_quoted_and_read_back() -> None:
    files: dict[str, str | bytes] = {MAIN: ""}
    plan = sc.plan_settings(tree_of(files), {"AllowUsers": ["alice", "b ob"]})
    assert tree_of(replan(files, plan)).effective("AllowUsers") == [("alice", "b ob")]


def test_aliases_conflict_in_settings_is_an_error() -> None:
    with pytest.raises(ValueError, match="same sshd option"):
        sc.plan_settings(
            tree_of({MAIN: ""}),
            {"KbdInteractiveAuthentication": "no", "ChallengeResponseAuthentication": "no"},
        )


def test_hostile_bytes_survive_planning() -> None:
    data = b"Banner /etc/\xff\n" + b"A" * 100_000 + b"\r\nPermitRootLogin yes\n"
    files: dict[str, str | bytes] = {MAIN: data}
    plan = sc.plan_settings(tree_of(files), {"PermitRootLogin": "no"})
    assert plan.files_bytes()[MAIN] == data.replace(b"PermitRootLogin yes", b"PermitRootLogin no")


def test_summary_escapes_control_characters() -> None:
    files: dict[str, str | bytes] = {MAIN: "", DROPIN: "AllowUsers \x1b[31mevil\n"}
    plan = sc.plan_settings(
        tree_of({MAIN: "Include /etc/ssh/sshd_config.d/*.conf\n", DROPIN: files[DROPIN]}),
        {"AllowUsers": ["alice"]},
    )
    assert "\x1b" not in plan.summary
