# Copyright: sshfleet contributors
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Action plugin of sshfleet.fleet.slurp: runs the static binary for the host's architecture
from the host's per-user cache (see plugins/plugin_utils/binmodule.py)."""

from __future__ import annotations

from ansible_collections.sshfleet.fleet.plugins.plugin_utils.binmodule import BinaryModuleAction


class ActionModule(BinaryModuleAction):
    BINARY = "slurp"
