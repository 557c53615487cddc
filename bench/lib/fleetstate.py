"""The benchmark fleet's files, read and written directly from the controller.

`sshfleet fleet up` writes DIR/fleet.json; every host's /home is DIR/hostNN/home and its /srv
is DIR/hostNN/fs/srv on the controller (bind mounts inside the host's namespace). The driver
owns the fleet, so it resets state between runs by writing those files itself (no SSH, not
measured) and checks the end state the same way.
"""

import base64
import hashlib
import json
import os
import pwd
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path


class StateError(Exception):
    """The fleet is not in the state a contender should have left it in."""


@dataclass
class Host:
    name: str
    port: int
    pid: int
    home_root: Path
    root: Path  # DIR/hostNN

    def local(self, remote):
        """Controller path of an absolute path on this host (/home/... or /srv/...)."""
        remote = Path(remote)
        parts = remote.parts
        if parts[:2] == ("/", "home"):
            return self.home_root.joinpath(*parts[2:])
        if parts[:2] == ("/", "srv"):
            return self.root / "fs" / "srv" / Path(*parts[2:])
        raise ValueError(f"{remote}: not under /home or /srv")


class Fleet:
    def __init__(self, fleet_dir):
        self.dir = Path(fleet_dir)
        j = json.loads((self.dir / "fleet.json").read_text())
        self.inventory = Path(j["inventory"])
        self.key = Path(j["private_key"])
        self.known_hosts = Path(j["known_hosts"])
        self.hosts = [
            Host(h["name"], int(h["port"]), int(h["pid"]), Path(h["home_root"]), self.dir / h["name"])
            for h in j["hosts"]
        ]

    def sshd_pids(self):
        return [h.pid for h in self.hosts]

    def write_hosts_file(self, path):
        Path(path).write_text("".join(f"{h.name} {h.port}\n" for h in self.hosts))

    # ---- authorized_keys ------------------------------------------------------------------

    def ak_path(self, host, user):
        return host.home_root / user / ".ssh" / "authorized_keys"

    def snapshot_keys(self, user):
        return {h.name: self.ak_path(h, user).read_bytes() for h in self.hosts}

    def reset_keys(self, user, snapshot):
        """Put every host's authorized_keys back to its snapshot (atomic, user-owned, 0600)."""
        for h in self.hosts:
            path = self.ak_path(h, user)
            st = os.stat(path.parent)
            atomic_write(path, snapshot[h.name], st.st_uid, st.st_gid, 0o600)

    def check_keys(self, user, new_pub_line, who):
        """Every host's authorized_keys must hold exactly one key: the new one."""
        want = key_blob(new_pub_line)
        bad = []
        for h in self.hosts:
            path = self.ak_path(h, user)
            blobs = [key_blob(l) for l in key_lines(path.read_text())]
            if blobs != [want]:
                bad.append(f"{h.name}: {len(blobs)} key(s), new key {'present' if want in blobs else 'MISSING'}")
        if bad:
            raise StateError(
                f"after {who}: authorized_keys is not exactly the new key on {len(bad)} host(s):\n  "
                + "\n  ".join(bad[:10])
            )

    def log_offsets(self):
        return {h.name: (h.root / "sshd.log").stat().st_size for h in self.hosts}

    def check_new_key_login(self, offsets, user, fingerprint, who):
        """Every host's sshd logged a login of `user` with the new key since `offsets`: the
        contender really proved the new key (for Ansible: the connection was reset)."""
        needle = f"Accepted publickey for {user} "
        bad = []
        for h in self.hosts:
            with open(h.root / "sshd.log", "rb") as f:
                f.seek(offsets[h.name])
                new = f.read().decode(errors="replace")
            if not any(needle in l and l.rstrip().endswith(fingerprint) for l in new.splitlines()):
                bad.append(h.name)
        if bad:
            raise StateError(
                f"after {who}: no login with the new key ({fingerprint}) in the sshd log of "
                f"{len(bad)} host(s): {', '.join(bad[:10])}"
            )

    # ---- replicated files -----------------------------------------------------------------

    def ensure_dir(self, remote_dir, user):
        """Create remote_dir (under /srv) on every host, owned by user, 0755."""
        pw = pwd.getpwnam(user)
        for h in self.hosts:
            d = h.local(remote_dir)
            d.mkdir(parents=True, exist_ok=True)
            os.chown(d, pw.pw_uid, pw.pw_gid)
            os.chmod(d, 0o755)

    def clear_dir(self, remote_dir, except_host):
        """Delete everything inside remote_dir on every host but except_host."""
        for h in self.hosts:
            if h.name == except_host:
                continue
            d = h.local(remote_dir)
            for e in d.iterdir():
                if e.is_dir() and not e.is_symlink():
                    shutil.rmtree(e)
                else:
                    e.unlink()

    def check_files(self, src_host, remote_paths, who, hosts=None, mode=0o644):
        """Every other host must have each file with the source's sha256, size and mode."""
        src = next(h for h in self.hosts if h.name == src_host)
        want = {p: sha256_file(src.local(p)) for p in remote_paths}
        bad = []
        for h in hosts or self.hosts:
            if h.name == src_host:
                continue
            for p in remote_paths:
                lp = h.local(p)
                if not lp.exists():
                    bad.append(f"{h.name}:{p} missing")
                    continue
                got = sha256_file(lp)
                if got != want[p]:
                    bad.append(f"{h.name}:{p} sha256 {got[:12]} != source {want[p][:12]}")
                elif mode is not None and (os.stat(lp).st_mode & 0o7777) != mode:
                    bad.append(f"{h.name}:{p} mode {oct(os.stat(lp).st_mode & 0o7777)} != {oct(mode)}")
        if bad:
            raise StateError(f"after {who}: {len(bad)} destination file(s) wrong:\n  " + "\n  ".join(bad[:10]))
        return want


def key_lines(text):
    return [l for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#")]


KEY_TYPES = ("ssh-", "ecdsa-", "sk-ssh-", "sk-ecdsa-")


def key_blob(line):
    """The base64 blob of an authorized_keys/.pub line (the token after the key type)."""
    toks = line.split()
    for i, t in enumerate(toks[:-1]):
        if t.startswith(KEY_TYPES):
            return toks[i + 1]
    raise StateError(f"not a key line: {line[:60]!r}")


def atomic_write(path, data, uid, gid, mode):
    path = Path(path)
    tmp = path.with_name(f".{path.name}.bench-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chown(tmp, uid, gid)
    os.chmod(tmp, mode)
    os.rename(tmp, path)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def pem_like(size, label):
    """Exactly `size` bytes of PEM-looking text (random base64 body, 64-column lines)."""
    head = f"-----BEGIN {label}-----\n".encode()
    foot = f"-----END {label}-----\n".encode()
    body_len = size - len(head) - len(foot)
    if body_len < 2:
        raise ValueError("size too small")
    raw = base64.b64encode(secrets.token_bytes(body_len)).replace(b"+", b"A")[: body_len]
    lines = bytearray()
    for i in range(0, body_len, 65):
        lines += raw[i : i + 64] + b"\n"
    body = bytes(lines[:body_len])
    if not body.endswith(b"\n"):
        body = body[:-1] + b"\n"
    out = head + body + foot
    assert len(out) == size
    return out
