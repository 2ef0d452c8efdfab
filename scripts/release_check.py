"""Check the plugin zip against plugins.qgis.org's upload rules before a release; exit 1 on any blocker.

    .venv/bin/python scripts/release_check.py            # builds dist/treeseg-<version>.zip, checks offline
    .venv/bin/python scripts/release_check.py --online   # also fetches homepage, tracker and repository
    .venv/bin/python scripts/release_check.py --zip X    # checks an existing zip instead

The rules are those of the repository's validator and security scanner (qgis/QGIS-Plugins-Website at 73c20fa),
written here from its published behaviour: the zip's layout and size, the mandatory metadata, bandit with the
tests the site enables, detect-secrets with the site's flags, and flake8 with every code the site lists (the
site enables a subset; TreeSeg keeps all of them clean). Placeholder addresses (example.org and the like,
the site's forbidden defaults, and the addresses this repository ships until a maintainer sets real ones)
are blockers; see RELEASING.md.
"""

from __future__ import annotations

import argparse
import configparser
import json
import re
import subprocess  # nosec B404  # runs the checkers with arguments built here
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional
from urllib.parse import urlparse

import package

MAX_SIZE = 25_000_000  # bytes, the site's default upload limit
MANDATORY = ("name", "description", "version", "qgisMinimumVersion", "author", "email", "about", "tracker",
             "repository")
URL_FIELDS = ("homepage", "tracker", "repository")
SITE_DEFAULT_URLS = {"tracker": "http://bugs", "repository": "http://repo", "homepage": "http://homepage"}
SHIPPED_PLACEHOLDERS = ("https://github.com/treeseg/treeseg",)  # this repository's stand-ins (RELEASING.md)
PLACEHOLDER_DOMAINS = ("example.org", "example.com", "example.net", "invalid", "test", "localhost")
FORBIDDEN_DIRECTORIES = ("__MACOSX", ".git", "__pycache__")
SUSPICIOUS_SUFFIXES = (".exe", ".dll", ".so", ".dylib", ".bat", ".sh", ".ps1", ".cmd")
BANDIT_TESTS = (  # every bandit test the site enables (it disables B109, B404, B410, B411)
    "B101", "B102", "B103", "B104", "B105", "B106", "B107", "B108", "B110", "B111", "B112", "B113", "B201", "B202",
    "B301", "B302", "B303", "B304", "B305", "B306", "B307", "B308", "B310", "B311", "B312", "B313", "B314", "B315",
    "B316", "B317", "B318", "B319", "B320", "B321", "B323", "B324", "B401", "B402", "B403", "B405", "B406", "B407",
    "B408", "B409", "B412", "B413", "B501", "B502", "B503", "B504", "B505", "B506", "B507", "B508", "B509", "B601",
    "B602", "B603", "B604", "B605", "B606", "B607", "B608", "B609", "B610", "B611", "B612", "B613", "B614", "B615",
    "B701", "B702", "B703", "B704",
)
FLAKE8_CODES = (  # every code the site lists, enabled or not
    "E101", "E111", "E112", "E113", "E114", "E115", "E116", "E117", "E121", "E122", "E123", "E124", "E125", "E126",
    "E127", "E128", "E129", "E131", "E133", "E201", "E202", "E203", "E211", "E221", "E222", "E223", "E224", "E225",
    "E226", "E227", "E228", "E231", "E241", "E242", "E251", "E261", "E262", "E265", "E266", "E271", "E272", "E273",
    "E274", "E275", "E301", "E302", "E303", "E304", "E305", "E306", "E401", "E402", "E501", "E502", "E701", "E702",
    "E703", "E704", "E711", "E712", "E713", "E714", "E721", "E722", "E731", "E741", "E742", "E743", "E901", "E902",
    "E999", "W191", "W291", "W292", "W293", "W391", "W503", "W504", "W601", "W602", "W603", "W604", "W605", "F401",
    "F402", "F403", "F404", "F405", "F811", "F821", "F822", "F823", "F831", "F841", "F901", "C901",
)
SECRETS_DISABLED = ("IPPublicDetector",)  # the one detect-secrets plugin the site leaves off


@dataclass(frozen=True)
class Blocker:
    """One reason the site would refuse the upload (or the release is not ready)."""

    rule: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"BLOCKER [{self.rule}] {self.where}: {self.message}"


def layout_blockers(archive: zipfile.ZipFile, size: int) -> List[Blocker]:
    """The zip's structure: one top folder named like a Python package, no paths, caches or executables."""
    names = archive.namelist()
    found = [Blocker("size", "zip", f"{size} bytes, over the limit of {MAX_SIZE}")] if size > MAX_SIZE else []
    tops = sorted({name.split("/")[0] for name in names})
    if len(tops) != 1 or not re.match(r"^[A-Za-z][A-Za-z0-9_]+$", tops[0]) or not tops[0].isidentifier():
        found.append(Blocker("layout", "zip", f"one top folder named like a Python package is needed, not {tops}"))
    top = tops[0] if tops else ""
    for required in ("__init__.py", "metadata.txt", "LICENSE"):
        if f"{top}/{required}" not in names:
            found.append(Blocker("layout", f"{top}/{required}", "missing"))
    for info in archive.infolist():
        name, parts = info.filename, info.filename.split("/")
        problems = [
            (".." in name or name.startswith("/") or "\\" in name or re.match(r"^[A-Za-z]:", name), "a path"),
            (".pyc" in name, "compiled Python (.pyc)"),
            (bool(set(parts) & set(FORBIDDEN_DIRECTORIES)), f"a folder of {FORBIDDEN_DIRECTORIES}"),
            (name.lower().endswith(SUSPICIOUS_SUFFIXES), "an executable or script type the site flags"),
            (name.endswith(".py") and bool((info.external_attr >> 16) & 0o111), "an executable Python file"),
        ]
        found.extend(Blocker("layout", name, f"the zip holds {what}") for bad, what in problems if bad)
    if archive.testzip() is not None:
        found.append(Blocker("layout", "zip", f"corrupt member {archive.testzip()}"))
    return found


def placeholder(url: str) -> Optional[str]:
    """Why ``url`` is not a real address (None when it may be one)."""
    parsed = urlparse(url)
    host = (parsed.hostname or "").lower()
    if not (parsed.scheme in ("http", "https") and host):
        return "not an http(s) URL"
    if any(host == domain or host.endswith("." + domain) for domain in PLACEHOLDER_DOMAINS):
        return f"a placeholder domain ({host})"
    if any(url.rstrip("/") == stand_in or url.startswith(stand_in + "/") for stand_in in SHIPPED_PLACEHOLDERS) \
            or url in SITE_DEFAULT_URLS.values():
        return "the placeholder this repository ships: set the real address (RELEASING.md)"
    return None


def _changelog_file() -> str:
    """The repository's CHANGELOG.md ("" when absent)."""
    path = package.REPO_ROOT / "CHANGELOG.md"
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def metadata_blockers(archive: zipfile.ZipFile, top: str) -> List[Blocker]:
    """metadata.txt: the [general] section, the mandatory fields, real addresses, the icon, no supportsQt6."""
    where = f"{top}/metadata.txt"
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment, method-assign]  # field names keep their case
    try:
        parser.read_string(archive.read(where).decode("utf-8"))
    except (KeyError, UnicodeDecodeError, configparser.Error) as error:
        return [Blocker("metadata", where, f"unreadable: {error}")]
    if not parser.has_section("general"):
        return [Blocker("metadata", where, "no [general] section")]
    general = dict(parser.items("general"))
    found = [Blocker("metadata", where, f"mandatory field '{field}' is missing or empty")
             for field in MANDATORY if not general.get(field, "").strip()]
    for field in URL_FIELDS:
        why = placeholder(general[field].strip()) if general.get(field, "").strip() else None
        if why:
            found.append(Blocker("metadata-placeholder", where, f"{field}={general[field].strip()}: {why}"))
    email = general.get("email", "").strip()
    domain = email.rpartition("@")[2].lower()
    if email and (not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", email)
                  or any(domain == d or domain.endswith("." + d) for d in PLACEHOLDER_DOMAINS)):
        found.append(Blocker("metadata-placeholder", where, f"email={email}: not a real, reachable address"))
    if "/" in general.get("author", ""):
        found.append(Blocker("metadata", where, "the author must not contain '/'"))
    if general.get("icon") and f"{top}/{general['icon'].removeprefix('./')}" not in archive.namelist():
        found.append(Blocker("metadata", where, f"icon={general['icon']} is not in the zip"))
    version = general.get("version", "").strip()
    if version and not re.search(rf"^\s*{re.escape(version)}\b", general.get("changelog", ""), re.MULTILINE):
        found.append(Blocker("changelog", where, f"changelog= has no entry starting with version {version}"))
    if version and not re.search(rf"^## {re.escape(version)}\b", _changelog_file(), re.MULTILINE):
        found.append(Blocker("changelog", "CHANGELOG.md", f"no '## {version}' section"))
    if "supportsQt6" in general:
        found.append(Blocker("metadata", where, "supportsQt6 is deprecated: QGIS 4 follows qgisMaximumVersion"))
    return found


def tool_output(command: List[str], cwd: Path) -> str:
    """The standard output of a checker (which exits non-zero when it finds something)."""
    try:
        return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300).stdout  # nosec B603
    except FileNotFoundError as error:
        raise SystemExit(f"{command[0]} is missing: install requirements/dev.txt ({error})") from None


def scanner_blockers(folder: Path) -> List[Blocker]:
    """bandit, detect-secrets and flake8 over the unpacked plugin, as the site runs them."""
    python = sys.executable
    bandit = json.loads(tool_output([python, "-m", "bandit", "-r", ".", "-f", "json", "--quiet",
                                     "-t", ",".join(BANDIT_TESTS)], folder) or "{}")
    found = [Blocker(f"bandit {hit['test_id']}", f"{hit['filename'].removeprefix('./')}:{hit['line_number']}",
                     hit["issue_text"]) for hit in bandit.get("results", [])]
    secrets_command = [python, "-m", "detect_secrets", "scan", "--all-files",
                       "--exclude-files", r"metadata\.txt", "--exclude-files", r"\.secrets\.baseline"]
    for plugin in SECRETS_DISABLED:
        secrets_command += ["--disable-plugin", plugin]
    secrets = json.loads(tool_output([*secrets_command, "."], folder) or "{}")
    found += [Blocker(f"detect-secrets {hit['type']}", f"{name}:{hit['line_number']}", "possible secret")
              for name, hits in secrets.get("results", {}).items() for hit in hits]
    python_files = sorted(str(path.relative_to(folder)) for path in folder.rglob("*.py"))
    flake8 = tool_output([python, "-m", "flake8", "--max-line-length=120", "--select", ",".join(FLAKE8_CODES),
                          *python_files], folder)
    for line in flake8.splitlines():
        location, _, message = line.partition(": ")
        found.append(Blocker(f"flake8 {message.split(' ')[0]}", location, message.partition(" ")[2]))
    return found


def url_blockers(archive: zipfile.ZipFile, top: str) -> List[Blocker]:
    """Online: each of homepage, tracker and repository answers (the site fetches them before accepting)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(archive.read(f"{top}/metadata.txt").decode("utf-8"))
    found = []
    for field in URL_FIELDS:
        url = parser.get("general", field, fallback="").strip()
        if not url or placeholder(url) == "not an http(s) URL":
            continue
        request = urllib.request.Request(url, headers={"User-Agent": "TreeSeg release check"})  # noqa: S310
        try:  # redirects are followed; an HTTP error status raises
            with urllib.request.urlopen(request, timeout=10):  # noqa: S310  # nosec B310  # http(s) only, checked
                pass
        except Exception as error:  # any network or HTTP failure is the answer
            found.append(Blocker("url", f"metadata.txt {field}", f"{url} does not answer: {error}"))
    return found


def check_zip(path: Path, online: bool = False) -> List[Blocker]:
    """Every blocker the site's rules find in the zip at ``path`` (none: ready to upload)."""
    with zipfile.ZipFile(path) as archive:
        found = layout_blockers(archive, path.stat().st_size)
        top = archive.namelist()[0].split("/")[0] if archive.namelist() else ""
        found += metadata_blockers(archive, top)
        if online:
            found += url_blockers(archive, top)
        with tempfile.TemporaryDirectory(prefix="treeseg-release-") as unpacked:
            archive.extractall(unpacked)  # the zip was just checked for paths
            found += scanner_blockers(Path(unpacked) / top)
    return found


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zip", type=Path, help="check this zip instead of building one")
    parser.add_argument("--online", action="store_true", help="also check that the metadata's URLs answer")
    arguments = parser.parse_args(argv)
    path = arguments.zip or package.build(package.REPO_ROOT / "dist")
    found = check_zip(path, arguments.online)
    for blocker in found:
        print(blocker)
    print(f"{path}: {len(found)} blocker(s)" + ("" if arguments.online else " (offline: URLs not fetched)"))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
