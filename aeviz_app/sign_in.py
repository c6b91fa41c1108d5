"""Who may write, as the pages ask it: the signed-in user (``st.user``) and the roles of the secrets
(:mod:`aeviz_core.access`), read at the moment of each write; the sign-in buttons, the read-only
notice and the account box."""

from __future__ import annotations

import streamlit as st

from aeviz_core.access import AccessDenied, Identity, Roles, may, require, role_of


def roles() -> Roles:
    """The roles of the app's secrets, read at each call: sign-in is on when they hold ``[auth]``.
    A malformed ``[aeviz]`` role list raises ``ValueError`` (every write is then refused)."""
    return Roles.from_secrets(st.secrets)


def signed_in() -> Identity | None:
    """Who ``st.user`` says is signed in now (None: nobody), read at each call, never from the
    session state."""
    return Identity.from_user(st.user.to_dict())


def writer(action: str, typed: str = "") -> Identity:
    """The identity that does ``action`` (a key of :data:`aeviz_core.access.ACTIONS`) now: with
    sign-in on, the signed-in user of ``st.user`` with a role that allows it, whatever name was
    typed; without, the name ``typed`` (unverified, maybe empty).

    Every write of the pages calls this at the moment it writes, so that a session whose widgets
    were drawn for someone else, or a crafted session state, writes nothing.

    Raises
    ------
    AccessDenied
        When the signed-in user (or nobody) may not; a malformed role list refuses every write.
    """
    try:
        rules = roles()
    except ValueError as exc:
        raise AccessDenied(action, "viewer", None, reason=str(exc)) from exc
    if not rules.sign_in:
        return Identity.typed(typed)
    who = signed_in()
    require(who, rules, action)
    return who


def allowed(action: str) -> bool:
    """Whether this session may do ``action`` now (for drawing its widgets; the write itself
    asks :func:`writer`)."""
    try:
        return may(signed_in(), roles(), action)
    except ValueError:
        return False


def sign_in_on() -> bool:
    """Whether the secrets configure sign-in (``[auth]``)."""
    try:
        return roles().sign_in
    except ValueError:
        return True  # a malformed role list: sign-in is meant, and nobody may write


def providers() -> list[str]:
    """The named providers of ``[auth]`` (``[auth.google]``...), or ``[None]`` for the one
    configured in ``[auth]`` itself."""
    try:
        auth = st.secrets.get("auth") or {}
    except FileNotFoundError:
        return [None]
    named = [name for name, value in auth.items() if hasattr(value, "keys")]
    return named or [None]


def sign_in_buttons(box=st, *, key: str) -> None:
    """A sign-in button per provider (``st.login``)."""
    for provider in providers():
        box.button("Sign in" + (f" with {provider.capitalize()}" if provider else ""), key=f"{key}.{provider}",
                   on_click=st.login, args=() if provider is None else (provider,), icon=":material/login:")


def read_only(why: str, *, action: str, key: str) -> None:
    """The one line a page shows where its buttons would be, for a session that may not do
    ``action``: why they are absent and, signed out, a sign-in button."""
    from aeviz_core.access import ACTIONS
    from .review_views import as_text

    needed = ACTIONS[action]
    try:
        roles()
    except ValueError as exc:
        st.error(f"Read-only: {why} is refused to everyone while the role lists in the app's secrets are "
                 f"malformed ({as_text(str(exc))}).", icon=":material/lock:")
        return
    who = signed_in()
    if who is None:
        st.info(f"Read-only: {why} needs a signed-in {needed}. You can look at everything here.",
                icon=":material/lock:")
        sign_in_buttons(key=key)
    else:
        st.info(f"Read-only: {why} needs the {needed} role, which {as_text(who.email)} does not have here "
                f"(an admin adds it to `[aeviz] {needed}s` in the app's secrets). You can look at everything here.",
                icon=":material/lock:")


def account(box) -> None:
    """The sidebar's sign-in line (with sign-in on only): who is signed in, their role and a
    sign-out button, or a sign-in button."""
    from .review_views import as_text

    if not sign_in_on():
        return
    who = signed_in()
    with box:
        if who is None:
            st.caption("Not signed in: the pages are read-only.")
            sign_in_buttons(key="app.sign_in")
            return
        try:
            role = role_of(who, roles())
        except ValueError as exc:
            st.error(f"The role lists in the secrets are malformed: {exc}", icon=":material/error:")
            role = "viewer"
        st.caption(f"Signed in as **{as_text(who.email)}** ({role}"
                   + ("" if who.verified else ", email unverified by the provider") + ")")
        st.button("Sign out", key="app.sign_out", on_click=st.logout, icon=":material/logout:")
