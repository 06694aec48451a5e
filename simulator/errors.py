"""The minersim exception hierarchy.

Library code raises these; only ``cli.py`` renders them, with the class's exit code and no
traceback. Stdlib only.
"""

from __future__ import annotations


def clip(text: str, limit: int = 120) -> str:
    """``text`` cut to ``limit`` characters, ending in ``...`` when cut.

    A message quotes the value it rejects, never a whole file: ``extends: /etc/passwd`` must
    not print the password file.
    """
    return text if len(text) <= limit else text[:limit - 3] + "..."


class MinersimError(Exception):
    """Base class of every error minersim reports to a user."""

    exit_code = 1

    def render(self) -> str:
        return str(self)


class ScenarioError(MinersimError):
    """A scenario file is unreadable or invalid.

    Rendered as ``FILE:LINE: key.path: problem (got X; allowed Y). hint``.
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key_path: str | None = None,
        got: object = None,
        allowed: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.key_path = key_path
        self.got = got
        self.allowed = allowed
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        where = self.file or "<scenario>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        parts = [f"{where}:"]
        if self.key_path:
            parts.append(f" {clip(self.key_path, 200)}:")
        parts.append(f" {self.message}")
        detail = []
        if self.got is not None:
            detail.append(f"got {clip(str(self.got))}")
        if self.allowed:
            detail.append(f"allowed: {self.allowed}")
        if detail:
            parts.append(f" ({'; '.join(detail)})")
        if self.hint:
            parts.append(f"; {self.hint}")
        return "".join(parts)


class ScenarioErrors(ScenarioError):
    """Several scenario problems at once; rendered one per line."""

    def __init__(self, errors: list[ScenarioError]) -> None:
        self.errors = errors
        first = errors[0]
        super().__init__(first.message, file=first.file, line=first.line, key_path=first.key_path,
                         got=first.got, allowed=first.allowed, hint=first.hint)

    def render(self) -> str:
        return "\n".join(e.render() for e in getattr(self, "errors", []))


class InputDataError(MinersimError):
    """A data file the scenario points at (e.g. a bootstrap CSV) is missing or malformed."""

    exit_code = 2


class RunError(MinersimError):
    """A run could not complete (bad run directory, unreachable scheduler, failed path)."""

    exit_code = 2


class ScenarioWarning(UserWarning):
    """A scenario input that is odd but possible: the run goes on, and the user is told.

    Raised through :func:`warnings.warn` by the scenario models; ``load`` adds the file and
    line, and ``cli.py`` prints it as ``FILE:LINE: warning: key.path: message`` on stderr
    (exit status unchanged).
    """

    def __init__(self, message: str, *, at: tuple[str | int, ...] = (), key_path: str | None = None,
                 file: str | None = None, line: int | None = None) -> None:
        self.message, self.at, self.key_path, self.file, self.line = message, at, key_path, file, line
        super().__init__(self.render())

    def located(self, file: str, line: int | None) -> ScenarioWarning:
        """The same warning at ``file:line``."""
        return ScenarioWarning(self.message, at=self.at, key_path=self.key_path, file=file, line=line)

    def as_error(self) -> ScenarioError:
        """The same problem as an error (``minersim validate --strict``)."""
        return ScenarioError(self.message, file=self.file, line=self.line, key_path=self.key_path)

    def render(self) -> str:
        where = self.file or "<scenario>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        key = f" {self.key_path}:" if self.key_path else ""
        return f"{where}: warning:{key} {self.message}"

    def __str__(self) -> str:
        return self.render()
