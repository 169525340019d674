"""mosquitto's ACL file: ``user NAME`` sections, ``topic [read|write|readwrite|deny] FILTER``,
``pattern [read|write|readwrite|deny] FILTER`` with ``%c`` (client id) and ``%u`` (username),
comments. ``topic`` lines before any ``user`` line apply to anonymous clients; ``pattern``
lines apply to every client. A ``deny`` that matches wins; otherwise a rule granting the access
must match, or the access is refused.

For a SUBSCRIBE, the filter is refused when a ``deny`` rule covers everything it can match, or
when no rule granting read can match anything it can (mosquitto 2.0 grants every SUBSCRIBE and
only filters what is delivered; each delivery is checked here too).

A client id or username holding ``+``, ``#`` or ``/`` never widens a pattern: a ``pattern``
rule whose substitution would hold one is skipped (CVE-2017-7650).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mqlite.protocol import topic_matches_filter

_ACCESS = {"read": frozenset({"read"}), "write": frozenset({"write"}),
           "readwrite": frozenset({"read", "write"}), "deny": frozenset()}


class AclFileError(Exception):
    """The file cannot be used; the message names the file and the line."""


@dataclass(frozen=True, slots=True)
class Rule:
    filter: str
    access: frozenset[str]  # empty: deny

    @property
    def deny(self) -> bool:
        return not self.access


@dataclass(slots=True)
class AclFile:
    path: str
    anonymous: list[Rule] = field(default_factory=list)
    users: dict[str, list[Rule]] = field(default_factory=dict)
    patterns: list[Rule] = field(default_factory=list)

    @classmethod
    def load(cls, path: str) -> AclFile:
        try:
            with open(path, encoding="utf-8") as file:
                lines = file.read().splitlines()
        except OSError as exc:
            raise AclFileError(f"cannot read ACL file {path}: {exc.strerror or exc}") from None
        acl = cls(path)
        user: str | None = None
        for number, raw in enumerate(lines, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            keyword, _, rest = line.partition(" ")
            rest = rest.strip()
            if keyword == "user":
                if not rest:
                    raise AclFileError(f"{path}:{number}: user needs a name")
                user = rest
                acl.users.setdefault(user, [])
                continue
            if keyword not in ("topic", "pattern"):
                raise AclFileError(f"{path}:{number}: unknown keyword {keyword!r} (user, "
                                   "topic or pattern)")
            word, _, filter_ = rest.partition(" ")
            if word in _ACCESS and filter_.strip():
                rule = Rule(filter_.strip(), _ACCESS[word])
            elif rest and " " not in rest:
                rule = Rule(rest, _ACCESS["readwrite"])  # no access word: readwrite
            else:
                raise AclFileError(f"{path}:{number}: {keyword} [read|write|readwrite|deny] "
                                   "FILTER")
            if keyword == "pattern":
                acl.patterns.append(rule)
            elif user is None:
                acl.anonymous.append(rule)
            else:
                acl.users[user].append(rule)
        return acl

    def rules_for(self, client_id: str, username: str | None) -> list[Rule]:
        rules = list(self.anonymous if username is None else self.users.get(username, []))
        for pattern in self.patterns:
            text = pattern.filter
            if "%c" in text:
                if any(c in client_id for c in "+#/"):
                    continue
                text = text.replace("%c", client_id)
            if "%u" in text:
                if username is None or any(c in username for c in "+#/"):
                    continue
                text = text.replace("%u", username)
            rules.append(Rule(text, pattern.access))
        return rules

    def allows(self, client_id: str, username: str | None, topic: str, access: str) -> bool:
        """``topic``: a concrete topic (publish, delivery) or a filter (subscribe)."""
        rules = self.rules_for(client_id, username)
        if any(rule.deny and covers(rule.filter, topic) for rule in rules):
            return False
        return any(access in rule.access and overlaps(rule.filter, topic) for rule in rules)


def _levels(text: str) -> list[str]:
    return text.split("/")


def _hidden(wildcard: str, level: str) -> bool:
    """A wildcard first level never matches a topic beginning with $ [MQTT-4.7.2-1]."""
    return wildcard in ("+", "#") and level.startswith("$")


def covers(rule: str, topic_filter: str) -> bool:
    """Whether every topic ``topic_filter`` matches is matched by ``rule`` (for a concrete
    topic: whether the rule matches it)."""
    if "+" not in topic_filter and "#" not in topic_filter:
        return topic_matches_filter(rule, topic_filter)
    wanted, given = _levels(rule), _levels(topic_filter)
    if _hidden(wanted[0], given[0]):
        return False
    for index, level in enumerate(given):
        if index >= len(wanted):
            return False
        have = wanted[index]
        if have == "#":
            return True
        if level == "#" or (have != "+" and (level == "+" or have != level)):
            return False
    return len(wanted) == len(given) or wanted[len(given):] == ["#"]


def overlaps(rule: str, topic_filter: str) -> bool:
    """Whether some topic is matched by both (for a concrete topic: whether the rule matches
    it)."""
    if "+" not in topic_filter and "#" not in topic_filter:
        return topic_matches_filter(rule, topic_filter)
    wanted, given = _levels(rule), _levels(topic_filter)
    if _hidden(wanted[0], given[0]) or _hidden(given[0], wanted[0]):
        return False
    for index in range(max(len(wanted), len(given))):
        a = wanted[index] if index < len(wanted) else None
        b = given[index] if index < len(given) else None
        if a == "#" or b == "#":
            return True
        if a is None or b is None:
            return False
        if a != "+" and b != "+" and a != b:
            return False
    return True
