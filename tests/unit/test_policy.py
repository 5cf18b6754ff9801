"""sshward.policy: role variables -> sshd keywords, as the role, the pyinfra deploy and verify compute them."""

from __future__ import annotations

from typing import Any

import pytest

from deploys.harden import policy_keys, role_defaults
from sshward.openssh import hardened_settings, version_from_package
from sshward.policy import PolicyError, sshd_settings

BULLSEYE = version_from_package("1:8.4p1-5+deb11u3")
BOOKWORM = version_from_package("1:9.2p1-2+deb12u6")
TRIXIE = version_from_package("1:10.0p1-7")
# The role's own defaults, as the role hands them to the core (one source of truth).
POLICY: dict[str, Any] = {
    key: role_defaults()[f"ssh_hardening_{key}"] for key in policy_keys() if key != "trusted_networks"
}


def test_trusted_networks_are_exempt_from_per_source_penalties_on_openssh_10():
    settings = sshd_settings(dict(POLICY, trusted_networks=["10.0.0.0/8", "2001:db8::/32"]), TRIXIE)
    assert settings["PerSourcePenaltyExemptList"] == "10.0.0.0/8,2001:db8::/32"


@pytest.mark.parametrize("version", [BULLSEYE, BOOKWORM], ids=["8.4", "9.2"])
def test_no_exempt_list_before_openssh_9_8(version):
    assert "PerSourcePenaltyExemptList" not in sshd_settings(dict(POLICY, trusted_networks=["10.0.0.0/8"]), version)


def test_no_exempt_list_without_trusted_networks():
    assert "PerSourcePenaltyExemptList" not in sshd_settings(dict(POLICY, trusted_networks=[]), TRIXIE)


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "not-a-net", "10.0.0.0/8,192.168.0.0/16"])
def test_a_bad_trusted_network_names_the_variable(bad):
    with pytest.raises(PolicyError, match=r"^sshward_trusted_networks: .* is not a valid network"):
        sshd_settings(dict(POLICY, trusted_networks=[bad]), TRIXIE)


def test_compatible_crypto_adds_curve25519_after_the_post_quantum_exchanges_on_openssh_10():
    hardened = sshd_settings(POLICY, TRIXIE)["KexAlgorithms"]
    compatible = sshd_settings(dict(POLICY, crypto="compatible"), TRIXIE)["KexAlgorithms"]
    assert "curve25519-sha256" not in hardened
    assert compatible == [*hardened, "curve25519-sha256", "curve25519-sha256@libssh.org"]


@pytest.mark.parametrize("version", [BULLSEYE, BOOKWORM], ids=["8.4", "9.2"])
def test_compatible_crypto_is_the_hardened_set_where_that_already_has_curve25519(version):
    assert sshd_settings(dict(POLICY, crypto="compatible"), version) == sshd_settings(POLICY, version)


def test_compatible_crypto_keeps_only_what_the_host_supports():
    supported = {"kex": ["mlkem768x25519-sha256", "sntrup761x25519-sha512", "curve25519-sha256"]}
    kex = hardened_settings(TRIXIE, supported, compatible=True)["KexAlgorithms"]
    assert kex == ["mlkem768x25519-sha256", "sntrup761x25519-sha512", "curve25519-sha256"]


def test_an_unknown_crypto_choice_lists_the_choices():
    with pytest.raises(PolicyError, match="ssh_hardening_crypto: 'strong' is not one of hardened, compatible"):
        sshd_settings(dict(POLICY, crypto="strong"), TRIXIE)
