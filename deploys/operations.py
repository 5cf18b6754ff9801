"""pyinfra operations of sshward: generators that read facts and yield commands or ``host.noop``.

Every decision comes from the core (``sshward.*``), exactly as in the Ansible modules:
``sshd_config`` is ``library/sshward_sshd_config.py``, ``reload_with_rollback`` is
``roles/ssh_hardening/tasks/apply.yml`` with ``sshward_revert``, ``moduli`` is ``sshward_moduli``,
``ratelimit`` is ``sshward_firewall`` (mode ratelimit). Refusals raise ``OperationError`` with the
modules' messages, before anything on the host changes.
"""

from __future__ import annotations

import base64
import inspect
import json
import shlex
import time
from collections.abc import Iterator, Mapping, Sequence
from io import StringIO
from typing import Any

from pyinfra import host, logger
from pyinfra.api import FunctionCommand, OperationError, StringCommand, operation
from pyinfra.api.arguments import CONNECTOR_ARGUMENT_KEYS
from pyinfra.operations import files

from sshward import firewall as fw
from sshward import pending_reload, revert
from sshward.effective import Effective, mismatches, parse_sshd_T
from sshward.guards import authorized_keys_paths, lockout_problems
from sshward.openssh import filter_moduli, option_aliases
from sshward.policy import PolicyError, SettingValue, sshd_settings
from sshward.sshd_config import (
    MemoryFS,
    load_tree,
    managed_block,
    plan_settings,
    resolve_include,
    sftp_only_block,
    to_text,
)

from . import facts

SSHD = facts.SSHD
REVERT_DIR = revert.STATE_DIR
REVERT_NAME = "sshd-config"
ROLLED_BACK = (
    "The change was rolled back: after the sshd reload a fresh SSH connection failed ({why}). The previous sshd "
    "configuration is restored and sshd reloaded; you are still able to log in. Fix the settings and run again."
)


# ------------------------------------------------------------------------------------------ helpers


def _q(argv: Sequence[str]) -> str:
    return " ".join(shlex.quote(str(a)) for a in argv)


def write_file_command(path: str, data: str | bytes, mode: str, owner: str = "root", group: str = "root") -> str:
    """Write ``data`` to ``path`` atomically: a temp file in the same directory, then ``mv``.

    ``owner``/``group``/``mode`` set to None keep the current file's (``--reference``).
    """
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    payload = base64.b64encode(raw).decode("ascii")
    directory = path.rsplit("/", 1)[0] or "/"
    qp = shlex.quote(path)
    steps = [
        f"t=$(mktemp -p {shlex.quote(directory)} .sshward-XXXXXX)",
        f'printf %s {payload} | base64 -d > "$t"',
        f'chown {shlex.quote(owner)}:{shlex.quote(group)} "$t"' if owner else f'chown --reference={qp} "$t"',
        f'chmod {shlex.quote(mode)} "$t"' if mode else f'chmod --reference={qp} "$t"',
        f'mv -f "$t" {qp}',
    ]
    return " && ".join(steps)


def _connector_args() -> dict[str, Any]:
    """The running operation's connector arguments (``_sudo``...), for commands run from callbacks."""
    args = host.current_op_global_arguments or {}
    return {k: v for k, v in args.items() if k in CONNECTOR_ARGUMENT_KEYS}


def _run(h: Any, command: str, connector_args: Mapping[str, Any]) -> tuple[bool, str, str]:
    status, output = h.run_shell_command(StringCommand(command), **connector_args)
    return bool(status), output.stdout, output.stderr


def sshd_context(user: str, address: str) -> str:
    """``-C`` for sshd -T so Match blocks apply as for this connection (the module's default address)."""
    if not user:
        return ""
    addr = address or "127.0.0.1"
    return f"user={user},host={addr},addr={addr}"


def sftp_block(groups: Sequence[str]) -> list[str]:
    """The managed ``Match Group`` block for SFTP-only groups (the core's, as the module writes it)."""
    try:
        return sftp_only_block(groups)
    except ValueError as exc:
        raise OperationError(str(exc)) from exc


def read_config_tree(path: str) -> tuple[Any, dict[str, bytes]]:
    """The sshd config tree from the SshdConfigFiles fact, asking again until every Include is covered."""
    sshdir = path.rsplit("/", 1)[0] or "/"
    dirs: list[str] = [f"{sshdir}/sshd_config.d"]
    for _ in range(16):
        files = host.get_fact(facts.SshdConfigFiles, path=path, dirs=tuple(dirs))
        if path not in files:
            raise OperationError(f"path: {path} is not a file; point path at the main sshd_config")
        fs = MemoryFS(files)
        try:
            tree = load_tree(path, fs.read, fs.listdir, sshdir=sshdir)
        except FileNotFoundError as exc:
            missing = str(exc)
            wanted = missing.rsplit("/", 1)[0]
            if wanted in dirs:
                raise OperationError(f"cannot read {missing} (included from {path})") from exc
            dirs.append(wanted)
            continue
        except ValueError as exc:
            raise OperationError(f"cannot edit {path}: {exc}") from exc
        more = []
        for d in tree.order:
            if d.key == "include":
                for arg in d.args:
                    full = arg if arg.startswith("/") else f"{sshdir}/{arg}"
                    parent = full.rsplit("/", 1)[0]
                    if parent not in dirs and not resolve_include(arg, fs.listdir, sshdir):
                        more.append(parent)
        if not more:
            return tree, files
        dirs += sorted(set(more))
    raise OperationError(f"cannot edit {path}: Include nested too deep")


def plan_sshd(
    tree: Any, path: str, settings: Mapping[str, SettingValue], aliases: Mapping[str, str], sftp_groups: Sequence[str]
) -> tuple[dict[str, str], list[str]]:
    """New contents of the files that change (sshward.sshd_config) and warnings, like the module."""
    try:
        plan = plan_settings(tree, settings, aliases=aliases)
    except ValueError as exc:
        raise OperationError(f"cannot edit {path}: {exc}") from exc
    new_files = dict(plan.files)
    before_main = to_text(tree.files[path].render())
    main_text = new_files.get(path, before_main)
    try:
        main_with_block = managed_block(main_text, "sftp-only", sftp_block(sftp_groups))
    except ValueError as exc:
        raise OperationError(f"{path}: {exc}") from exc
    if main_with_block != before_main:
        new_files[path] = main_with_block
    warnings = [f"{r.path}:{r.lineno}: {r.reason}: {r.text.strip()[:200]}" for r in plan.dead + plan.remaining]
    return new_files, warnings


def compute_settings(policy: Mapping[str, Any] | None, settings: Mapping[str, Any] | None) -> dict[str, SettingValue]:
    if settings is not None:
        return dict(settings)
    version = host.get_fact(facts.OpenSSHServerVersion)
    try:
        return sshd_settings(policy or {}, version, host.get_fact(facts.SshQueries) or None)
    except (PolicyError, KeyError) as exc:
        raise OperationError(f"policy is missing {exc}" if isinstance(exc, KeyError) else str(exc)) from exc


def guard_problems(
    effective: Effective,
    connecting_user: str,
    connecting_address: str,
    require_keys_for: Sequence[str],
    planned_keys: Mapping[str, Sequence[str]] | None,
) -> list[str]:
    """sshward.guards.lockout_problems with accounts and authorized_keys read through facts."""
    allow = [u for v in effective.get("allowusers", []) for u in v.split()]
    names = tuple(dict.fromkeys([connecting_user, *require_keys_for, *allow]))
    accounts = host.get_fact(facts.Accounts, names=names)
    paths = tuple(p for a in accounts.values() for p in authorized_keys_paths(effective, a))
    keyfiles = host.get_fact(facts.FileContents, paths=paths) if paths else {}
    return lockout_problems(
        effective,
        connecting_user,
        accounts.get,
        keyfiles.get,
        require_keys_for=list(require_keys_for) + allow,
        host=connecting_address,
        addr=connecting_address,
        planned_keys=planned_keys or {},
    )


def backup_path(path: str, suffix: str) -> str:
    return f"{path}.{suffix}~"


def backup_suffix() -> str:
    """The same shape as Ansible's backup_local: ``PID.YYYY-MM-DD@HH:MM:SS``."""
    import os

    return f"{os.getpid()}.{time.strftime('%Y-%m-%d@%H:%M:%S')}"


# ------------------------------------------------------------------------------------- sshd_config


def _check_effective(
    state: Any,
    host: Any,
    sshd: str,
    path: str,
    context: str,
    wanted: Mapping[str, Any],
    backups: Sequence[tuple[str, str]],
    connector_args: Mapping[str, Any],
) -> bool:
    """After the files are in place: sshd -T must report every requested value, else restore them."""
    argv = [sshd, "-T", "-f", path] + (["-C", context] if context else [])
    ok, out, err = _run(host, f"LC_ALL=C {_q(argv)}", connector_args)
    wrong = mismatches(wanted, parse_sshd_T(out)) if ok else {"sshd -T": ([], [err.strip()])}
    if not wrong:
        return True
    restore = " && ".join(f"cp -p -- {shlex.quote(b)} {shlex.quote(p)}" for p, b in backups) or "true"
    _run(host, restore, connector_args)
    host.log_styled(
        "sshd would not run with the requested values, restored the previous files: "
        + "; ".join(f"{k}: wanted {w}, sshd -T says {v}" for k, (w, v) in sorted(wrong.items())),
        fg="red",
    )
    return False


@operation()
def sshd_config(
    policy: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
    path: str = "/etc/ssh/sshd_config",
    sftp_only_groups: Sequence[str] = (),
    connecting_user: str = "",
    connecting_address: str = "",
    require_keys_for: Sequence[str] = (),
    planned_keys: Mapping[str, Sequence[str]] | None = None,
    lockout_guards: bool = True,
    backup: str | None = None,
    check_only: bool = False,
    sshd: str = SSHD,
) -> Iterator[Any]:
    """Set sshd keywords so that ``sshd -T`` reports them (Include and Match aware), guarded.

    + policy: the ssh_hardening role variables without their prefix (computed for the host's OpenSSH)
    + settings: or explicit ``{Keyword: value}``
    + connecting_user/connecting_address: the guards refuse a config that locks this user out
    + require_keys_for: users who must keep a key sshd accepts (AllowUsers entries are added)
    + planned_keys: ``{user: [key lines]}`` about to be installed (for the dry run before users exist)
    + backup: suffix of the backup copies (``PATH.SUFFIX~``); None: no backups
    + check_only: validate and guard only (the preflight), never change anything

    Refuses (OperationError, nothing changed) when ``sshd -t`` rejects the candidate or the lockout
    guards find a problem, with the sshward_sshd_config module's messages.
    """
    if policy is None and settings is None:
        raise OperationError("give policy or settings")
    version = host.get_fact(facts.OpenSSHServerVersion, sshd=sshd)
    wanted = compute_settings(policy, settings)
    tree, _ = read_config_tree(path)
    new_files, warnings = plan_sshd(tree, path, wanted, option_aliases(version), sftp_only_groups)
    for warning in warnings:
        logger.warning(f"{host.print_prefix}{warning}")
    context = sshd_context(connecting_user, connecting_address)

    owed = _pending_reload()
    if not new_files and owed is not None and not check_only:
        logger.warning(
            f"{host.print_prefix}an earlier run changed the sshd files but did not finish the reload; reloading now"
        )
        yield _q(["test", "-f", pending_reload.PENDING_RELOAD_PATH])  # a change: the reload that is owed
        return
    if not new_files:
        if not check_only:
            effective = host.get_fact(facts.SshdEffective, config=path, context=context, sshd=sshd)
            wrong = mismatches(wanted, effective)
            if wrong:
                raise OperationError(
                    "sshd does not run with the requested values: "
                    + "; ".join(f"{k}: wanted {w}, sshd -T says {h}" for k, (w, h) in sorted(wrong.items()))
                )
        host.noop(f"{path}: sshd already runs with the requested settings")
        return

    main_text = new_files.get(path)
    if main_text is not None:
        candidate = host.get_fact(facts.SshdCandidate, text=main_text, context=context, sshd=sshd)
        if not candidate["ok"]:
            raise OperationError(f"the new configuration is rejected by sshd -t, nothing changed: {candidate['error']}")
        if lockout_guards and connecting_user:
            problems = guard_problems(
                candidate["effective"], connecting_user, connecting_address, require_keys_for, planned_keys
            )
            if problems:
                raise OperationError("refusing to change sshd: " + "; ".join(problems) + ". Nothing was changed.")
    if check_only:
        host.noop(f"{path}: the policy passes sshd -t and the lockout guards")
        return

    backups = [(p, backup_path(p, backup)) for p in sorted(new_files)] if backup else []
    for p, b in backups:
        yield f"cp -p -- {shlex.quote(p)} {shlex.quote(b)}"
    for p, text in sorted(new_files.items()):
        if p == path:
            yield write_file_command(p, text, "0644")
        else:
            yield write_file_command(p, text, "", owner="", group="")
    restore = "; ".join(f"cp -p -- {shlex.quote(b)} {shlex.quote(p)}" for p, b in backups) or "true"
    yield (
        f"mkdir -p /run/sshd; if ! e=$(LC_ALL=C {shlex.quote(sshd)} -t 2>&1); then {restore}; "
        'echo "sshd -t rejected the installed files, restored them: $e" >&2; exit 1; fi'
    )
    record = pending_reload.render(
        sorted(set(new_files) | set(owed["changed_files"] if owed else ())),
        pending_reload.restore_first(owed, [{"path": p, "backup": b} for p, b in backups]),
    )
    yield f"install -d -m 0700 {shlex.quote(pending_reload.PENDING_RELOAD_PATH.rsplit('/', 1)[0])}"
    yield write_file_command(pending_reload.PENDING_RELOAD_PATH, record, "0600")
    yield FunctionCommand(_check_effective, (sshd, path, context, wanted, backups, _connector_args()), {})


def _pending_reload() -> dict[str, Any] | None:
    """The record an interrupted earlier run left (see sshward.pending_reload), or None."""
    found = host.get_fact(facts.FileContents, paths=(pending_reload.PENDING_RELOAD_PATH,))
    text = found.get(pending_reload.PENDING_RELOAD_PATH)
    if text is None:
        return None
    try:
        return pending_reload.parse(text.decode("utf-8", "replace"))
    except pending_reload.PendingReloadError:
        return {"changed_files": [], "backups": []}  # still owed, with nothing to restore


# ---------------------------------------------------------------------------- reload with rollback


def _ssh_probe(h: Any, port: int | None, timeout: int) -> str | None:
    """Open a brand-new SSH connection with the inventory's credentials; None when it works, else why."""
    from pyinfra.connectors.ssh import SSHConnector
    from pyinfra.connectors.sshuserclient import SSHClient

    if not isinstance(h.connector, SSHConnector):
        return "not an SSH connection"
    deadline = time.monotonic() + timeout
    why = "timed out"
    while True:
        kwargs = h.connector.make_paramiko_kwargs()
        hostname = kwargs.pop("hostname")
        if port:
            kwargs["port"] = port
        kwargs["timeout"] = min(10, max(1, timeout))
        client = SSHClient()
        try:
            client.connect(hostname, **kwargs)
            _, stdout, _ = client.exec_command("true")
            if stdout.channel.recv_exit_status() == 0:
                return None
            why = "the probe command failed"
        except Exception as exc:  # any failure to log in is the answer
            why = f"{type(exc).__name__}: {exc}".strip()
            if "no acceptable kex" in str(exc).lower() or type(exc).__name__ == "IncompatiblePeer":
                return (
                    f"{why}: pyinfra's SSH client (paramiko) speaks none of the key exchanges sshd now offers, so "
                    "pyinfra could not reach the host again; add one it speaks (curve25519-sha256) with "
                    "ssh_hardening_extra_settings.KexAlgorithms, or manage this host with the @docker/@local connector"
                )
        finally:
            client.close()
        if time.monotonic() + 2 > deadline:
            return why
        time.sleep(2)


def _probe_and_confirm(
    state: Any, host: Any, port: int | None, timeout: int, connector_args: Mapping[str, Any]
) -> bool:
    """Probe a fresh connection; confirm the armed revert, or fire it now and report the rollback."""
    from pyinfra.connectors.ssh import SSHConnector

    if isinstance(host.connector, SSHConnector):
        why = _ssh_probe(host, port, timeout)
    else:  # docker/local connectors: at least prove sshd answers on the host
        ok, out, _ = _run(
            host, f"ssh-keyscan -T 5 -p {int(port or 22)} 127.0.0.1 2>/dev/null | head -n1", connector_args
        )
        why = None if ok and out.strip() else "sshd does not answer on the host"
    if why is None:
        ok, _, err = _run(host, runner_python(f"runner.confirm({REVERT_NAME!r}, {REVERT_DIR!r})"), connector_args)
        if not ok:
            host.log_styled(f"the probe worked but confirming the revert failed: {err.strip()}", fg="red")
        return ok
    plan = f"{REVERT_DIR}/{REVERT_NAME}.json"
    _run(host, _q(["python3", "-I", "-B", f"{REVERT_DIR}/runner.py", "fire", plan]), connector_args)
    host.log_styled(ROLLED_BACK.format(why=why), fg="red")
    return False


def runner_python(code: str, *args: str) -> str:
    """``python3 -I -c`` with sshward.revert (installed as runner.py) importable as ``runner``."""
    prelude = f"import sys; sys.path.insert(0, {REVERT_DIR!r}); import runner; "
    return _q(["python3", "-I", "-B", "-c", prelude + code, *args])


def arm_commands(
    seconds: int, files: list[dict[str, str]], commands: list[list[str]], reason: str, name: str = REVERT_NAME
) -> list[str]:
    """Install sshward.revert's source as the runner and arm it with its own ``arm``."""
    revert.plan_document(name, seconds, files, commands, reason)  # refuses bad input here, on the controller
    source = inspect.getsource(revert)
    args = base64.b64encode(
        json.dumps({"name": name, "seconds": seconds, "files": files, "commands": commands, "reason": reason}).encode()
    ).decode()
    return [
        f"install -d -m 0700 {shlex.quote(REVERT_DIR)}",
        write_file_command(f"{REVERT_DIR}/runner.py", source, "0700"),
        runner_python(
            "import base64, json; a = json.loads(base64.b64decode(sys.argv[1])); "
            f"runner.arm(a['name'], a['seconds'], a['files'], a['commands'], a['reason'], {REVERT_DIR!r})",
            args,
        ),
    ]


@operation()
def reload_with_rollback(
    paths: Sequence[str] = (),
    backup: str = "",
    service: str = "ssh",
    rollback_seconds: int = 90,
    probe_timeout: int = 30,
    port: int | None = None,
) -> Iterator[Any]:
    """Reload sshd behind an armed revert, probe a fresh SSH connection, confirm or roll back.

    + paths/backup: the files sshd_config may have changed and the suffix of its backups; the
      revert restores those whose backup exists
    + port: the port the probe connects to (the first configured one, when it changed)
    """
    candidates = tuple(backup_path(p, backup) for p in paths)
    existing = host.get_fact(facts.FileContents, paths=candidates) if candidates else {}
    files = [{"path": p, "backup": backup_path(p, backup)} for p in paths if backup_path(p, backup) in existing]
    owed = _pending_reload()
    files = pending_reload.restore_first(owed, files)
    if not files and owed is None:
        host.noop("sshd configuration unchanged: nothing to reload")
        return
    reason = f"ssh_hardening changed {', '.join(f['path'] for f in files) or 'files an earlier run left unloaded'}"
    yield from arm_commands(rollback_seconds, files, [["systemctl", "reload", service]], reason)
    yield _q(["systemctl", "reload", service])
    yield FunctionCommand(_probe_and_confirm, (port, probe_timeout, _connector_args()), {})
    yield _q(["rm", "-f", pending_reload.PENDING_RELOAD_PATH])


# ------------------------------------------------------------------------------ host keys, moduli


@operation()
def assert_debian() -> Iterator[str]:
    """Refuse a host that is not Debian or Ubuntu (the role's assert, same message)."""
    from pyinfra.facts.server import LinuxDistribution

    dist = host.get_fact(LinuxDistribution) or {}
    meta = dist.get("release_meta") or {}
    family = f"{meta.get('ID', '')} {meta.get('ID_LIKE', '')}".lower().split()
    if "debian" not in family and "ubuntu" not in family:
        raise OperationError(f"ssh_hardening supports Debian and Ubuntu; {dist.get('name')} is not handled yet")
    host.noop(f"{dist.get('name')} {dist.get('major')}")
    return
    yield  # a generator that never yields a command


@operation()
def host_keys(rsa_bits: int = 4096, replace_rsa: bool = True) -> Iterator[str]:
    """Ed25519 and RSA host keys; an RSA key of another size is replaced (``replace_rsa``)."""
    bits = host.get_fact(facts.RsaHostKeyBits)
    present = host.get_fact(
        facts.FileContents, paths=("/etc/ssh/ssh_host_ed25519_key.pub", "/etc/ssh/ssh_host_rsa_key.pub")
    )
    changed = False
    if "/etc/ssh/ssh_host_ed25519_key.pub" not in present:
        yield "ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key"
        changed = True
    if replace_rsa and bits != rsa_bits or "/etc/ssh/ssh_host_rsa_key.pub" not in present:
        yield "rm -f /etc/ssh/ssh_host_rsa_key /etc/ssh/ssh_host_rsa_key.pub"
        yield _q(
            ["ssh-keygen", "-q", "-t", "rsa", "-b", str(int(rsa_bits)), "-N", "", "-f", "/etc/ssh/ssh_host_rsa_key"]
        )
        changed = True
    if not changed:
        host.noop(f"host keys present (RSA {bits} bits)")


@operation()
def moduli(min_bits: int = 3072, path: str = "/etc/ssh/moduli") -> Iterator[str]:
    """Remove DH groups smaller than ``min_bits`` from the moduli file (sshward.openssh.filter_moduli)."""
    if min_bits < 2048 or min_bits > 8192:
        raise OperationError(f"min_bits: {min_bits} is outside 2048-8192; 3072 is the usual choice")
    data = host.get_fact(facts.FileContents, paths=(path,)).get(path)
    if data is None:
        raise OperationError(f"path: cannot read {path}")
    before = data.decode("ascii", "replace")
    try:
        after = filter_moduli(before, min_bits)
    except ValueError as exc:
        raise OperationError(f"{path}: {exc}; regenerate it with ssh-keygen -M generate / -M screen") from exc
    if after == before:
        host.noop(f"{path}: no group smaller than {min_bits} bits")
        return
    # Too big for a command line (Debian's file is ~500 kB): uploaded, then moved into place.
    yield from files.put._inner(src=StringIO(after), dest=path, user="root", group="root", mode="0644")


# --------------------------------------------------------------------------------------- rate limit


def _verify_loaded(
    state: Any,
    host: Any,
    backend: str,
    mode: str,
    policy: Any,
    commands: Mapping[str, Any],
    connector_args: Mapping[str, Any],
) -> bool:
    """After loading: the live rules must equal the policy (re-planned from fresh state)."""
    ok, out, _ = _run(host, facts.FirewallState().command(commands), connector_args)
    current = facts.FirewallState().process(out.splitlines())
    skip_v6 = backend == "iptables" and current.get("ip6tables_save") is None
    args = {k: (v or "") if k != "nft_json" else v for k, v in current.items()}
    wrong = [p.family for p in fw.plan(policy, backend, **args) if p.changed and not (skip_v6 and p.family == "ipv6")]
    if wrong:
        host.log_styled(
            f"the live {backend} rules for {', '.join(wrong)} do not match the policy after loading", fg="red"
        )
        return False
    return True


def _firewall(
    mode: str,
    params: Mapping[str, Any],
    enabled: bool,
    backend: str,
    ports: Sequence[int],
    persistent: bool,
    connecting_address: str,
    config_dir: str,
    sshd: str,
) -> Iterator[Any]:
    """The sshward_firewall module's steps for one mode, as commands (its order, its messages)."""
    params = dict(params, mode=mode, ports=list(ports) or None)
    warnings: list[str] = []
    policy = None
    fh = host.get_fact(facts.FirewallHost)
    bins: dict[str, str] = fh["bins"]
    if enabled:
        try:
            policy = fw.build_policy(params)
        except fw.FirewallError as exc:
            raise OperationError(str(exc)) from exc
        effective = host.get_fact(facts.SshdEffective, sshd=sshd)
        listening = fw.sshd_ports("\n".join(f"{k} {v}" for k, vs in effective.items() for v in vs)) or None
        try:
            if ports:
                if listening is not None:
                    fw.check_ports(policy.ports, listening)
            elif not listening:
                raise OperationError(f"ports: sshd ({sshd}) was not found or lists no port; set ports")
            else:
                policy = fw.build_policy(dict(params, ports=listening))
        except fw.FirewallError as exc:
            raise OperationError(str(exc)) from exc
        warnings += policy.warnings
        if connecting_address:
            cls = fw.limited_class(policy, connecting_address)
            if cls in ("other", "trusted"):
                warnings.append(
                    f"connecting_address: {connecting_address} (this connection) is rate limited as '{cls}'"
                )
            elif cls == "dropped":
                warnings.append(
                    f"connecting_address: {connecting_address} (this connection) is not in admin_networks: "
                    "new SSH connections from it will be dropped"
                )

    avail = {"iptables": "iptables-restore" in bins and "iptables-save" in bins, "nftables": "nft" in bins}
    if enabled:
        try:
            chosen = fw.detect_backend(
                fh["iptables_version"] or None, avail["nftables"], fh["nft_ruleset"] or None,
                fh["nftables_enabled"].strip() == "enabled", override=backend,
            )  # fmt: skip
        except fw.FirewallError as exc:
            raise OperationError(str(exc)) from exc
        if not avail[chosen]:
            pkg = "nftables" if chosen == "nftables" else "iptables"
            raise OperationError(
                f"backend: {chosen} was asked for but its tools are missing; install the {pkg} package "
                "(the ssh_ratelimit role does it for nftables) or use backend=auto"
            )
        message = fw.conflict_message(
            fh["ufw_status"] if "ufw" in bins else None, fh["firewalld"] if "systemctl" in bins else None,
            setting="backend",
        )  # fmt: skip
        if message and not (backend == "nftables" and chosen == "nftables"):
            raise OperationError(message)
        backends = [chosen]
        others = [b for b in fw.BACKENDS if b != chosen and avail[b]]
    elif backend == "auto":
        backends, others = [b for b in fw.BACKENDS if avail[b]], []
    else:
        backends, others = ([backend] if avail[backend] else []), []

    def state_for(b: str) -> tuple[dict[str, Any], dict[str, tuple[str, ...]]]:
        commands = fw.state_commands(b, mode, fh["nft_version"] or None)
        return host.get_fact(facts.FirewallState, commands=commands), commands

    def plans_for(b: str, pol: Any) -> list[Any]:
        current, _ = state_for(b)
        skip_v6 = b == "iptables" and current.get("ip6tables_save") is None
        args = {k: (v or "") if k != "nft_json" else v for k, v in current.items()}
        try:
            result = fw.plan_removal(mode, b, **args) if pol is None else fw.plan(pol, b, **args)
        except fw.FirewallError as exc:
            raise OperationError(str(exc)) from exc
        return [p for p in result if not (skip_v6 and p.family == "ipv6")]

    plans = [p for b in backends for p in plans_for(b, policy)] + [p for b in others for p in plans_for(b, None)]
    for w in warnings:
        logger.warning(f"{host.print_prefix}{w}")

    def resolve(argv: Sequence[str]) -> list[str]:
        return [bins.get(argv[0], argv[0]), *argv[1:]]

    def feed(p: Any, argv: Sequence[str]) -> str:
        payload = base64.b64encode(p.script.encode()).decode()
        return f"printf %s {payload} | base64 -d | {_q(resolve(argv))}"

    todo = [p for p in plans if p.changed]
    if todo:
        yield " && ".join(feed(p, p.check_command) for p in todo)  # check every script before loading any
        for p in todo:
            yield feed(p, p.command)
        for b in backends:
            _, commands = state_for(b)
            yield FunctionCommand(_verify_loaded, (b, mode, policy, commands, _connector_args()), {})

    # Persistence: the saved scripts of this mode and the boot unit (sshward_firewall's layout).
    unit_path = f"{fw.UNIT_DIR}/{fw.UNIT_NAME}"
    saved_paths = {(m, b, f): f"{config_dir}/{fw.saved_name(m, b, f)}" for m in fw.MODES for b, f in fw.SAVED}
    current_files = host.get_fact(facts.FileContents, paths=(*saved_paths.values(), unit_path))
    planned: dict[str, str | None] = {}
    for b, family in fw.SAVED:
        keep = None
        if enabled and persistent and backends and b == backends[0]:
            fresh = [p for p in fw.plan(policy, b) if p.family == family]
            if fresh and not (b == "iptables" and family == "ipv6" and not any(p.family == "ipv6" for p in plans)):
                keep = fresh[0].script
        planned[saved_paths[(mode, b, family)]] = keep
    file_commands: list[str] = []
    for path, text in planned.items():
        before = current_files.get(path)
        if text is None and before is not None:
            file_commands.append(f"rm -f -- {shlex.quote(path)}")
        elif text is not None and (before is None or before.decode("utf-8", "replace") != text):
            file_commands.append(write_file_command(path, text, "0600"))
    entries = []
    unit_bins = {n: bins.get(n, f"/usr/sbin/{n}") for n in fw.UNIT_BINARIES}
    for m in fw.MODES:
        for b, family in fw.SAVED:
            path = saved_paths[(m, b, family)]
            present = planned[path] is not None if path in planned else path in current_files
            if present:
                entries.append((m, b, family, path, unit_bins))
    unit_enabled = fh["unit_enabled"].strip() == "enabled"
    unit_commands: list[str] = []
    if entries:
        unit = fw.render_unit(entries)
        before_unit = current_files.get(unit_path)
        if before_unit is None or before_unit.decode("utf-8", "replace") != unit:
            unit_commands += [write_file_command(unit_path, unit, "0644"), "systemctl daemon-reload"]
        if not unit_enabled:
            unit_commands.append(_q(["systemctl", "enable", fw.UNIT_NAME]))
    elif unit_path in current_files:
        unit_commands += [
            _q(["systemctl", "disable", fw.UNIT_NAME]),
            f"rm -f -- {shlex.quote(unit_path)}",
            "systemctl daemon-reload",
            f"rmdir --ignore-fail-on-non-empty {shlex.quote(config_dir)} 2>/dev/null || true",
        ]
    if file_commands and any(planned.values()):
        yield f"install -d -m 0700 {shlex.quote(config_dir)}"
    yield from file_commands
    yield from unit_commands
    if not todo and not file_commands and not unit_commands:
        host.noop(f"{mode}: the live rules, saved files and boot unit already match the policy")


@operation()
def ratelimit(
    enabled: bool = True,
    backend: str = "auto",
    ports: Sequence[int] = (),
    seconds: int = 60,
    hitcount: int = 4,
    trusted_networks: Sequence[str] = (),
    trusted_seconds: int = 60,
    trusted_hitcount: int = 10,
    allowlist: Sequence[str] = (),
    persistent: bool = True,
    connecting_address: str = "",
    config_dir: str = "/etc/sshward/firewall",
    sshd: str = SSHD,
) -> Iterator[Any]:
    """Rate-limit new SSH connections in sshward's own chains/table (the sshward_firewall module, ratelimit).

    Rules come from sshward.firewall; they are checked (``--test`` / ``nft -c``) before any is loaded,
    compared with the live ruleset after loading, saved under ``config_dir`` and loaded at boot by
    ``sshward-firewall.service`` (``persistent``). ``enabled=False`` removes every trace.
    """
    params = {
        "seconds": seconds, "hitcount": hitcount, "trusted_networks": list(trusted_networks),
        "trusted_seconds": trusted_seconds, "trusted_hitcount": trusted_hitcount, "allowlist": list(allowlist),
        "admin_networks": [], "allow_loopback": True,
    }  # fmt: skip
    yield from _firewall("ratelimit", params, enabled, backend, ports, persistent, connecting_address, config_dir, sshd)


@operation()
def restrict(
    admin_networks: Sequence[str] = (),
    enabled: bool = True,
    backend: str = "auto",
    ports: Sequence[int] = (),
    allow_loopback: bool = True,
    persistent: bool = False,
    connecting_address: str = "",
    config_dir: str = "/etc/sshward/firewall",
    sshd: str = SSHD,
) -> Iterator[Any]:
    """New SSH connections only from ``admin_networks`` and loopback (the sshward_firewall module, restrict).

    Established sessions are untouched. Not persistent by default, as the lockdown loads it: an armed
    revert (``arm_restrict_revert``) removes it unless confirmed.
    """
    params = {"admin_networks": list(admin_networks), "allow_loopback": allow_loopback}
    yield from _firewall("restrict", params, enabled, backend, ports, persistent, connecting_address, config_dir, sshd)
