#!/usr/bin/env python3
"""Byte counter for the module-path benchmark (bench.py `modules`): installed as `ssh` and
`sftp` (symlinks; ANSIBLE_SSH_EXECUTABLE / ANSIBLE_SFTP_EXECUTABLE) for one extra,
unmeasured run per contender. Runs the real program, forwards stdin and counts what goes to
the host: the remote command line (ssh's last argument), stdin (pipelined modules, arguments,
sftp batch commands) and, for sftp, the size of every file `put`. Appends
`PROGRAM CMDLINE_BYTES STDIN_BYTES PUT_FILE_BYTES` to $SSHFLEET_BYTES_LOG."""

import os
import shlex
import subprocess
import sys
import threading

mode = os.path.basename(sys.argv[0])
real = {"ssh": "/usr/bin/ssh", "sftp": "/usr/bin/sftp", "scp": "/usr/bin/scp"}[mode]
count = {"stdin": 0, "put": 0}
proc = subprocess.Popen([real] + sys.argv[1:], stdin=subprocess.PIPE)


def pump():
    fd = sys.stdin.fileno()
    try:
        while True:
            b = os.read(fd, 1 << 16)
            if not b:
                break
            count["stdin"] += len(b)
            if mode == "sftp":
                for line in b.decode(errors="replace").splitlines():
                    if line.startswith("put "):
                        try:
                            count["put"] += os.path.getsize(shlex.split(line)[1])
                        except (OSError, ValueError, IndexError):
                            pass
            proc.stdin.write(b)
            proc.stdin.flush()
    except OSError:
        pass
    finally:
        try:
            proc.stdin.close()
        except OSError:
            pass


t = threading.Thread(target=pump, daemon=True)
t.start()
rc = proc.wait()
t.join(1)
cmdline = len(sys.argv[-1].encode()) if mode == "ssh" and len(sys.argv) > 1 else 0
with open(os.environ["SSHFLEET_BYTES_LOG"], "a") as f:
    f.write(f"{mode} {cmdline} {count['stdin']} {count['put']}\n")
sys.exit(rc)
