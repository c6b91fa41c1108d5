"""Who may write: the identity behind a session and the role the app's secrets give it.

A copy of the app shared as a link is open to anyone who has it. With sign-in configured
(an ``[auth]`` section in the secrets, Streamlit's OpenID Connect login), every write needs a
signed-in identity with a role, and the reviewer recorded in the store is that identity; the
roles come from the ``[aeviz]`` section::

    [aeviz]
    reviewers = ["ana@plant.example", "@plant.example"]  # emails, or whole domains
    admins = ["it@plant.example"]                         # models and the store; reviewers too

Without ``[auth]`` (a local ``streamlit run``) nobody can be checked: everyone may write, under
the name they type, and the store marks that name unverified.

This module holds the rules only; it imports no Streamlit. The app reads ``st.user`` and
``st.secrets`` at the moment of each write and asks :func:`require`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ACTIONS",
    "ROLES",
    "AccessDenied",
    "Identity",
    "Roles",
    "may",
    "require",
    "role_of",
]

#: the roles, least to most allowed
ROLES: tuple[str, ...] = ("viewer", "reviewer", "admin")

#: each write the app offers -> the least role that may do it with sign-in on
ACTIONS: dict[str, str] = {
    "decide": "reviewer",  # a decision, with its note and tags
    "apply": "reviewer",  # apply a similar event's decision
    "comment": "reviewer",
    "refit": "reviewer",  # teach the model from the decisions
    "adopt": "reviewer",  # adopt the taught version (recorded in the store)
    "upload_data": "reviewer",  # replace the session's data with an uploaded table
    "upload_model": "admin",  # load a model zip
    "save_model": "admin",  # write a model into the shared model directory
    "model_dir": "admin",  # point the session at another model directory
}

#: what each action is called in a refusal ("... may not <what>")
_DOING = {
    "decide": "record a decision",
    "apply": "apply a decision",
    "comment": "post a comment",
    "refit": "teach the model",
    "adopt": "adopt a model version",
    "upload_data": "upload data",
    "upload_model": "upload a model",
    "save_model": "save a model",
    "model_dir": "change the model directory",
}


@dataclass(frozen=True)
class Identity:
    """Who is behind a session.

    Attributes
    ----------
    email : str
        The signed-in email; in a local run (no sign-in), the name the reviewer typed.
    subject : str
        The provider's stable id of the person (the ID token's ``sub``); empty when unverified.
    provider : str
        The issuer that vouches for the identity (the ID token's ``iss``, else the name of the
        ``[auth]`` provider); empty when unverified.
    verified : bool
        True when a sign-in proved the identity (and the provider did not say the email is
        unverified); False for a typed name.

    Examples
    --------
    >>> Identity.typed("  ana ")
    Identity(email='ana', subject='', provider='', verified=False)
    """

    email: str
    subject: str = ""
    provider: str = ""
    verified: bool = False

    @classmethod
    def typed(cls, name: str) -> Identity:
        """A name typed in a local run: nobody checked it."""
        return cls(email=str(name).strip())

    @classmethod
    def from_user(cls, user: Mapping[str, Any] | None) -> Identity | None:
        """The signed-in identity of ``st.user`` (a mapping of the ID token's claims), or None
        when nobody is signed in (``is_logged_in`` missing or false) or the claims hold no email.

        An email the provider marks unverified (``email_verified`` false) gives an identity
        with ``verified=False``, which no role list matches.
        """
        if not user or user.get("is_logged_in") is not True:
            return None
        email = str(user.get("email") or "").strip()
        if not email:
            return None
        provider = str(user.get("iss") or user.get("provider") or "")
        return cls(email=email, subject=str(user.get("sub") or ""), provider=provider,
                   verified=user.get("email_verified", True) is not False)

    @property
    def proof(self) -> dict[str, Any]:
        """``verified``, ``provider`` and ``subject``, as the review store's writes take them
        (``store.set_review(..., reviewer=who.email, **who.proof)``)."""
        return {"verified": self.verified, "provider": self.provider, "subject": self.subject}


@dataclass(frozen=True)
class Roles:
    """The role lists of the secrets and whether sign-in is on.

    Attributes
    ----------
    sign_in : bool
        True when the secrets hold an ``[auth]`` section: writes need a role.
    reviewers, admins : tuple of str
        Lower-case entries: an email (``"ana@plant.example"``) or a whole domain
        (``"@plant.example"``). Admins are reviewers too.
    """

    sign_in: bool = False
    reviewers: tuple[str, ...] = ()
    admins: tuple[str, ...] = ()

    @classmethod
    def from_secrets(cls, secrets: Mapping[str, Any] | None) -> Roles:
        """Read ``[auth]`` (its presence) and ``[aeviz] reviewers`` / ``admins`` from the secrets
        (``st.secrets`` or a dict; a secrets object with no file behind it reads as empty).

        Raises
        ------
        ValueError
            When ``reviewers`` or ``admins`` is not a list of strings, or an entry is neither an
            email nor an ``@domain``.

        Examples
        --------
        >>> roles = Roles.from_secrets({"auth": {"redirect_uri": "..."},
        ...                             "aeviz": {"reviewers": ["@Plant.example"]}})
        >>> roles.sign_in, roles.reviewers
        (True, ('@plant.example',))
        """
        if secrets is None:
            return cls()
        try:
            auth = secrets.get("auth")
            section = secrets.get("aeviz") or {}
        except FileNotFoundError:  # st.secrets without a secrets.toml
            return cls()
        return cls(sign_in=bool(auth), reviewers=_entries(section, "reviewers"),
                   admins=_entries(section, "admins"))


class AccessDenied(PermissionError):
    """A write the session's role may not do; nothing was written.

    Attributes
    ----------
    action : str
        The refused action (a key of :data:`ACTIONS`).
    role : str
        The session's role.
    identity : Identity or None
        Who asked; None when nobody is signed in.
    reason : str, optional
        Why nobody may write at all (a malformed role list), instead of the role's reason.
    """

    def __init__(self, action: str, role: str, identity: Identity | None, reason: str | None = None) -> None:
        self.action, self.role, self.identity = action, role, identity
        doing = _DOING.get(action, action)
        if reason is not None:
            message = f"nobody may {doing}: {reason}"
        elif identity is None:
            message = f"sign in to {doing}: this copy of aeviz records who decides"
        elif not identity.verified:
            message = (f"{identity.email} may not {doing}: the sign-in provider does not vouch for this "
                       "email (unverified)")
        else:
            needed = ACTIONS[action]
            message = (f"{identity.email} may not {doing}: that needs the {needed} role, and this email has "
                       f"the {role} role (ask an admin to add it to [aeviz] {needed}s in the app's secrets)")
        super().__init__(message)


def role_of(identity: Identity | None, roles: Roles) -> str:
    """The role of ``identity`` under ``roles``: ``"admin"``, ``"reviewer"`` or ``"viewer"``.

    Without sign-in (``roles.sign_in`` false) everyone is ``"admin"``: nobody can be checked, as
    in the app before sign-in existed. With sign-in, nobody signed in (None) and an unverified
    identity are viewers; otherwise the email is matched, case-insensitively, against the admins
    then the reviewers (an entry ``"@domain"`` matches every email of that domain).

    Examples
    --------
    >>> roles = Roles(sign_in=True, reviewers=("@plant.example",), admins=("it@plant.example",))
    >>> ana = Identity("Ana@Plant.example", "123", "https://accounts.google.com", True)
    >>> role_of(ana, roles), role_of(None, roles)
    ('reviewer', 'viewer')
    """
    if not roles.sign_in:
        return "admin"
    if identity is None or not identity.verified:
        return "viewer"
    if _matches(identity.email, roles.admins):
        return "admin"
    if _matches(identity.email, roles.reviewers):
        return "reviewer"
    return "viewer"


def may(identity: Identity | None, roles: Roles, action: str) -> bool:
    """Whether ``identity`` may do ``action`` (a key of :data:`ACTIONS`); see :func:`require`."""
    needed = _needed(action)
    return ROLES.index(role_of(identity, roles)) >= ROLES.index(needed)


def require(identity: Identity | None, roles: Roles, action: str) -> str:
    """Check a write before it happens.

    Parameters
    ----------
    identity : Identity or None
        Who asks (None: nobody signed in).
    roles : Roles
        From the secrets (:meth:`Roles.from_secrets`).
    action : str
        A key of :data:`ACTIONS`.

    Returns
    -------
    role : str
        The role that allows it.

    Raises
    ------
    AccessDenied
        When the role may not do ``action`` (a :class:`PermissionError`; its message says why).
    ValueError
        For an unknown action.
    """
    role = role_of(identity, roles)
    if ROLES.index(role) < ROLES.index(_needed(action)):
        raise AccessDenied(action, role, identity)
    return role


def _needed(action: str) -> str:
    try:
        return ACTIONS[action]
    except KeyError:
        raise ValueError(f"action must be one of {sorted(ACTIONS)}, got {action!r}") from None


def _entries(section: Mapping[str, Any], name: str) -> tuple[str, ...]:
    values = section.get(name, ())
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise ValueError(f"[aeviz] {name} must be a list of emails or @domains, got {values!r}")
    out = []
    for value in values:
        entry = str(value).strip().lower()
        if "@" not in entry or entry.endswith("@") or " " in entry:
            raise ValueError(f"[aeviz] {name} entries must be an email or an @domain, got {value!r}")
        out.append(entry)
    return tuple(out)


def _matches(email: str, entries: tuple[str, ...]) -> bool:
    email = email.strip().lower()
    domain = email[email.rfind("@"):] if "@" in email else None
    return any(entry == email or (entry.startswith("@") and entry == domain) for entry in entries)
