"""The polkit rule: valid JavaScript, and it says YES to exactly the service
user for exactly logind's reboot and power-off actions.

polkitd is not run (that needs D-Bus and a running system): the rule file is
executed by Node.js against a stand-in of polkit's ``polkit.addRule`` API
(polkit(8), "AUTHORIZATION RULES"), and every (user, action) pair is asked.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.packaging.conftest import POLKIT_RULE

LOGIND_POLICY = Path("/usr/share/polkit-1/actions/org.freedesktop.login1.policy")

GRANTED = {
    "org.freedesktop.login1.reboot",
    "org.freedesktop.login1.reboot-multiple-sessions",
    "org.freedesktop.login1.power-off",
    "org.freedesktop.login1.power-off-multiple-sessions",
}

needs_node = pytest.mark.skipif(
    shutil.which("node") is None,
    reason="node is not installed (tools/bootstrap.sh installs Debian's nodejs)",
)

HARNESS = r"""
const fs = require("fs"), vm = require("vm");
const [rulePath, queriesPath] = process.argv.slice(2);
const rules = [];
const polkit = {
  Result: {YES: "yes", NO: "no", AUTH_SELF: "auth_self", AUTH_SELF_KEEP: "auth_self_keep",
           AUTH_ADMIN: "auth_admin", AUTH_ADMIN_KEEP: "auth_admin_keep", NOT_HANDLED: null},
  addRule(f) { rules.push(f); },
  addAdminRule(f) { throw new Error("the rule must not change who is an administrator"); },
  log(m) {}, spawn(argv) { throw new Error("the rule must not run programs"); },
};
vm.runInNewContext(fs.readFileSync(rulePath, "utf8"), {polkit}, {filename: rulePath});
const answers = JSON.parse(fs.readFileSync(queriesPath, "utf8")).map(([user, id]) => {
  const action = {id, lookup: () => undefined};
  const subject = {user, groups: [user, "dialout", "gpio"], local: false, active: false,
                   isInGroup(g) { return this.groups.includes(g); }};
  for (const r of rules) { const res = r(action, subject); if (res != null) return res; }
  return null;
});
process.stdout.write(JSON.stringify({rules: rules.length, answers}));
"""


def logind_actions() -> list[str]:
    if LOGIND_POLICY.exists():
        return re.findall(r'<action id="([^"]+)"', LOGIND_POLICY.read_text())
    return sorted(
        GRANTED
        | {
            "org.freedesktop.login1.reboot-ignore-inhibit",
            "org.freedesktop.login1.suspend",
            "org.freedesktop.login1.halt",
        }
    )


@needs_node
def test_rule_is_valid_javascript(tmp_path):
    js = tmp_path / "rule.js"  # node --check goes by the file extension
    shutil.copy(POLKIT_RULE, js)
    p = subprocess.run(["node", "--check", str(js)], capture_output=True, text=True, check=False)
    assert p.returncode == 0, p.stderr


@needs_node
def test_rule_grants_only_the_service_user_reboot_and_power_off(tmp_path):
    actions = [*logind_actions(), "org.freedesktop.systemd1.manage-units"]
    users = ["sms-bridge", "root", "pi", "sms-bridge2", "sms", "nobody"]
    queries = [(u, a) for u in users for a in actions]
    (tmp_path / "q.json").write_text(json.dumps(queries))
    (tmp_path / "harness.js").write_text(HARNESS)
    p = subprocess.run(
        ["node", str(tmp_path / "harness.js"), str(POLKIT_RULE), str(tmp_path / "q.json")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["rules"] == 1
    answers = dict(zip(map(tuple, queries), out["answers"], strict=True))
    yes = {q for q, a in answers.items() if a is not None}
    assert yes == {("sms-bridge", a) for a in GRANTED}
    assert {answers[q] for q in yes} == {"yes"}
    # everything else is left to the defaults (never a NO that would
    # override an administrator's own rules)
    assert all(a is None for q, a in answers.items() if q not in yes)


@pytest.mark.skipif(not LOGIND_POLICY.exists(), reason=f"{LOGIND_POLICY} absent (systemd package)")
def test_granted_actions_are_loginds_own_and_ignore_inhibit_is_not_among_them():
    declared = set(logind_actions())
    assert declared >= GRANTED
    text = POLKIT_RULE.read_text()
    named = set(re.findall(r'"(org\.freedesktop\.[a-z0-9.-]+)"', text))
    assert named == GRANTED
    assert "ignore-inhibit" not in "".join(named)
