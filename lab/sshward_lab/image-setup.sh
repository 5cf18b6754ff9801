#!/bin/sh
# Runs inside the freshly debootstrapped tree (chroot) to make it boot under
# docker with systemd as PID 1, close to a fresh VPS. Part of the image recipe:
# editing this file changes the recipe hash and rebuilds the images.
set -eu

# Every container must get its own host keys, as a cloud image does at first boot.
rm -f /etc/ssh/ssh_host_*
cat > /etc/systemd/system/sshward-lab-hostkeys.service <<'UNIT'
[Unit]
Description=Generate SSH host keys on first boot (sshward lab)
Before=ssh.service ssh.socket
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
UNIT
mkdir -p /etc/systemd/system/multi-user.target.wants
ln -sf /etc/systemd/system/sshward-lab-hostkeys.service \
    /etc/systemd/system/multi-user.target.wants/sshward-lab-hostkeys.service

# Units that need real hardware or a console; a container has neither.
for unit in \
    dev-hugepages.mount sys-fs-fuse-connections.mount sys-kernel-config.mount \
    sys-kernel-debug.mount sys-kernel-tracing.mount systemd-remount-fs.service \
    systemd-udevd.service systemd-udev-trigger.service systemd-modules-load.service \
    getty.target console-getty.service getty@tty1.service \
    systemd-firstboot.service systemd-networkd-wait-online.service; do
    ln -sf /dev/null "/etc/systemd/system/$unit"
done

# docker provides the network, hostname and resolv.conf.
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id

apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/*.log
