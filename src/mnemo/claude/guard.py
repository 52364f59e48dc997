"""The Bash guard: find dangerous commands however they are dressed up (standard library only).

A command line is split into simple commands (on `;`, `&&`, `||`, `|`, `&`, newlines), each
unwrapped (`sudo`, `env X=1`, `timeout 5`, `\\rm`, `/bin/rm`, `bash -c "..."`, `$(...)`), and
every simple command is checked against the rules. Users add rules (regexes on the normalised
simple command) and allow patterns in the config file.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Iterable

WRAPPERS = {
    "env",
    "command",
    "exec",
    "nohup",
    "nice",
    "time",
    "timeout",
    "xargs",
    "stdbuf",
    "builtin",
}
SHELLS = {"sh", "bash", "zsh", "dash", "ksh", "fish"}
INTERPRETERS = SHELLS | {"python", "python3", "perl", "ruby", "node"}
DEFAULT_BRANCHES = {"main", "master", "trunk", "develop"}


class Verdict:
    """Why a command is stopped. Plain classes here: `dataclasses` costs a hook ~10 ms."""

    __slots__ = ("reason", "rule")

    def __init__(self, rule: str, reason: str) -> None:
        self.rule = rule
        self.reason = reason

    def __repr__(self) -> str:
        return f"Verdict({self.rule!r}, {self.reason!r})"


Rule = Callable[[list[str], "Context"], str | None]


class Context:
    __slots__ = ("cwd", "home", "project_root", "raw")

    def __init__(self, cwd: str, project_root: str, home: str, raw: str) -> None:
        self.cwd = cwd
        self.project_root = project_root
        self.home = home
        self.raw = raw  # the whole command line, for rules that need pipes


def split_commands(command: str) -> list[str]:
    """Simple commands of a shell line, including those inside $(...), `...` and bash -c."""
    pieces: list[str] = []
    for inner in re.findall(r"\$\(([^()]*)\)|`([^`]*)`", command):
        pieces.extend(split_commands(inner[0] or inner[1]))
    for part in re.split(r"\|\||&&|[;|&\n]", command):
        part = part.strip()
        if part:
            pieces.append(part)
    return pieces


def shell_payloads(command: str, depth: int = 0) -> list[str]:
    """The scripts given to `sh -c`/`bash -c` anywhere in the line, nested ones included."""
    try:
        words = shlex.split(command, posix=True)
    except ValueError:
        return []
    found = []
    for i in range(len(words) - 2):
        if os.path.basename(words[i].lstrip("\\")) in SHELLS and words[i + 1] == "-c":
            found.append(words[i + 2])
            if depth < 3:
                found.extend(shell_payloads(words[i + 2], depth + 1))
    return found


def words_of(simple: str) -> list[str]:
    try:
        words = shlex.split(simple, posix=True)
    except ValueError:
        words = simple.split()
    return unwrap(words)


def unwrap(words: list[str]) -> list[str]:
    """Drop assignments, wrappers and sudo; normalise `\\rm` and `/bin/rm` to `rm`."""
    words = [w.lstrip("\\") if w.startswith("\\") else w for w in words]
    while words:
        head = os.path.basename(words[0]) if "/" in words[0] else words[0]
        words[0] = head
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", head):
            words = words[1:]
        elif head in WRAPPERS:
            words = words[1:]
            while words and (words[0].startswith("-") or re.fullmatch(r"[\d.]+[smhd]?", words[0])):
                words = words[1:]
        elif head in ("sudo", "doas"):
            return words  # judged by its own rule
        else:
            break
    return words


def _flags(words: list[str]) -> set[str]:
    flags: set[str] = set()
    for word in words[1:]:
        if word.startswith("--"):
            flags.add(word)
        elif word.startswith("-") and len(word) > 1:
            flags.update(f"-{ch}" for ch in word[1:])
    return flags


def _targets(words: list[str]) -> list[str]:
    return [w for w in words[1:] if not w.startswith("-")]


def rule_sudo(words: list[str], ctx: Context) -> str | None:
    if words and words[0] in ("sudo", "doas", "su"):
        return "runs a command as root (sudo/su); ask the user to run it themselves"
    return None


def rule_recursive_delete(words: list[str], ctx: Context) -> str | None:
    if not words or words[0] != "rm":
        return None
    flags = _flags(words)
    if not ({"-r", "-R", "--recursive"} & flags):
        return None
    home = ctx.home.rstrip("/")
    root = ctx.project_root.rstrip("/")
    in_root = os.path.normpath(ctx.cwd) == os.path.normpath(ctx.project_root)
    for target in _targets(words):
        expanded = target.replace("${HOME}", home).replace("$HOME", home)
        if expanded == "~" or expanded.startswith("~/"):
            expanded = home + expanded[1:]
        normalised = os.path.normpath(os.path.join(ctx.cwd, expanded)) if expanded else ""
        if expanded in ("/", "/*") or normalised == "/":
            return "recursively deletes the filesystem root"
        if normalised in (home, home + "/*") or expanded.rstrip("/") in (home, home + "/*"):
            return "recursively deletes the home directory"
        if normalised == root or (in_root and expanded in (".", "./", "*", "./*")):
            return "recursively deletes the project root"
        if expanded in ("..", "../") and os.path.normpath(os.path.join(ctx.cwd, "..")) in (
            "/",
            home,
        ):
            return "recursively deletes a parent of the project"
    return None


def rule_pipe_to_shell(words: list[str], ctx: Context) -> str | None:
    raw = re.sub(r"\s+", " ", ctx.raw)
    fetch = r"(?:curl|wget|fetch|iwr|Invoke-WebRequest)\b"
    shell = r"(?:sudo\s+)?(?:\S*/)?(?:" + "|".join(sorted(INTERPRETERS)) + r")\b"
    if re.search(fetch + r"[^|]*\|\s*" + shell, raw):
        return "pipes a download straight into a shell; download, read, then run it"
    if re.search(r"(?:" + "|".join(sorted(SHELLS)) + r")\s+<\(\s*" + fetch, raw):
        return "runs a downloaded script through process substitution"
    if re.search(r"(?:" + "|".join(sorted(SHELLS)) + r")\s+-c\s+[\"']?\$\(\s*" + fetch, raw):
        return "runs a downloaded script through bash -c"
    return None


def rule_disk_write(words: list[str], ctx: Context) -> str | None:
    if not words:
        return None
    if words[0] == "dd" and any(w.startswith("of=/dev/") for w in words[1:]):
        return "writes raw data to a device with dd"
    if words[0].startswith("mkfs") or words[0] in ("fdisk", "parted", "wipefs", "shred"):
        return f"formats or wipes a disk ({words[0]})"
    if re.search(r">\s*/dev/(sd|nvme|hd|vd|xvd|disk)", ctx.raw):
        return "redirects output onto a disk device"
    return None


def rule_chmod_world(words: list[str], ctx: Context) -> str | None:
    if not words or words[0] not in ("chmod", "chown"):
        return None
    flags = _flags(words)
    targets = _targets(words)
    if ({"-R", "--recursive"} & flags) and any(
        t in ("/", "/*", "~", ctx.home) for t in targets[1:]
    ):
        return f"recursively changes permissions of a system-wide path ({words[0]} -R)"
    return None


def rule_force_push(words: list[str], ctx: Context) -> str | None:
    if len(words) < 2 or words[0] != "git" or "push" not in words[1:3]:
        return None
    args = words[words.index("push") + 1 :]
    forced = any(
        a in ("-f", "--force")
        or a.startswith("--force-with-lease")
        or a.startswith("+")
        or (a.startswith("-") and not a.startswith("--") and "f" in a[1:])
        for a in args
    ) or any(":" in a and a.split(":", 1)[0].startswith("+") for a in args)
    if not forced:
        return None
    refs = [a.lstrip("+").split(":")[-1] for a in args if not a.startswith("-")][1:]
    if not refs or any(r.removeprefix("refs/heads/") in DEFAULT_BRANCHES for r in refs):
        return "force-pushes to the default branch; push to a feature branch instead"
    return None


def rule_fork_bomb(words: list[str], ctx: Context) -> str | None:
    if re.search(r":\s*\(\s*\)\s*\{[^}]*:\s*\|\s*:", ctx.raw):
        return "is a fork bomb"
    return None


RULES: dict[str, Rule] = {
    "sudo": rule_sudo,
    "recursive-delete": rule_recursive_delete,
    "pipe-to-shell": rule_pipe_to_shell,
    "disk-write": rule_disk_write,
    "chmod-recursive": rule_chmod_world,
    "force-push": rule_force_push,
    "fork-bomb": rule_fork_bomb,
}


def check(
    command: str,
    cwd: str,
    project_root: str,
    home: str,
    disabled: Iterable[str] = (),
    extra_deny: Iterable[str] = (),
    allow: Iterable[str] = (),
) -> Verdict | None:
    """The first rule the command breaks, or None. `allow` regexes exempt a whole command line;
    `extra_deny` regexes are tested against each normalised simple command."""
    if any(re.search(pattern, command) for pattern in allow):
        return None
    disabled = set(disabled)
    ctx = Context(cwd=cwd, project_root=project_root, home=home, raw=command)
    lines = [command, *shell_payloads(command)]
    for line in lines:
        ctx.raw = line
        for simple in split_commands(line):
            words = words_of(simple)
            for name, rule in RULES.items():
                if name in disabled:
                    continue
                reason = rule(words, ctx)
                if reason:
                    return Verdict(name, f"mnemo guard ({name}): this command {reason}.")
            normalised = " ".join(words)
            for pattern in extra_deny:
                if re.search(pattern, normalised):
                    return Verdict(
                        "custom", f"mnemo guard: matches the configured rule {pattern!r}."
                    )
    return None


# permissions.deny rules written at install time: Claude Code enforces these itself.
PERMISSION_DENY_RULES = [
    "Bash(sudo *)",
    "Bash(rm -rf /)",
    "Bash(rm -rf ~)",
    "Bash(mkfs *)",
    "Bash(dd * of=/dev/*)",
    "Bash(chmod -R 777 /)",
    "Bash(git push --force * main)",
    "Bash(git push --force * master)",
    "Bash(git push -f * main)",
    "Bash(git push -f * master)",
]
