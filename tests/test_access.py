"""Who may write: identities from ``st.user``, roles from the secrets, refusals that say why."""

from __future__ import annotations

import pytest

from aeviz_core import AccessDenied, Identity, Roles, may, require, role_of
from aeviz_core.access import ACTIONS

SECRETS = {
    "auth": {"redirect_uri": "http://localhost:8501/oauth2callback", "client_id": "aeviz"},
    "aeviz": {"reviewers": ["ana@plant.example", "@Night.Plant.example"], "admins": ["IT@plant.example"]},
}
ROLES = Roles.from_secrets(SECRETS)
ISSUER = "https://accounts.example"


def signed_in(email, **claims):
    return Identity.from_user({"is_logged_in": True, "email": email, "sub": f"sub-{email}", "iss": ISSUER,
                               **claims})


def test_roles_come_from_the_secrets_lower_case():
    assert ROLES.sign_in
    assert ROLES.reviewers == ("ana@plant.example", "@night.plant.example")
    assert ROLES.admins == ("it@plant.example",)
    assert Roles.from_secrets({}) == Roles()
    assert not Roles.from_secrets({"aeviz": {"reviewers": ["ana@plant.example"]}}).sign_in  # no [auth]


@pytest.mark.parametrize("email, role", [
    ("ana@plant.example", "reviewer"),
    ("ANA@Plant.Example", "reviewer"),  # emails match whatever their case
    ("bo@night.plant.example", "reviewer"),  # a whole domain
    ("bo@plant.example", "viewer"),  # the domain's parent is not the domain
    ("bo@other-night.plant.example", "viewer"),
    ("it@plant.example", "admin"),
    ("eve@example.com", "viewer"),
])
def test_role_of_a_signed_in_email(email, role):
    assert role_of(signed_in(email), ROLES) == role


def test_admins_may_do_what_reviewers_may_and_models_besides():
    admin, reviewer, viewer = signed_in("it@plant.example"), signed_in("ana@plant.example"), signed_in("x@y.example")
    for action, needed in ACTIONS.items():
        assert may(admin, ROLES, action)
        assert may(reviewer, ROLES, action) == (needed == "reviewer")
        assert not may(viewer, ROLES, action)
        assert not may(None, ROLES, action)
    assert require(reviewer, ROLES, "decide") == "reviewer"
    assert require(admin, ROLES, "upload_model") == "admin"


def test_a_refusal_is_a_permission_error_that_says_why():
    with pytest.raises(PermissionError, match="sign in to record a decision"):
        require(None, ROLES, "decide")
    with pytest.raises(AccessDenied, match=r"x@y\.example may not post a comment: that needs the reviewer role") as info:
        require(signed_in("x@y.example"), ROLES, "comment")
    assert (info.value.action, info.value.role) == ("comment", "viewer")
    with pytest.raises(AccessDenied, match="needs the admin role, and this email has the reviewer role"):
        require(signed_in("ana@plant.example"), ROLES, "upload_model")
    with pytest.raises(ValueError, match="action must be one of"):
        require(None, ROLES, "drop_tables")


def test_without_sign_in_everyone_may_write_under_a_typed_name():
    local = Roles.from_secrets({"aeviz": {"reviewers": ["ana@plant.example"]}})
    ana = Identity.typed("  ana ")
    assert (ana.email, ana.subject, ana.provider, ana.verified) == ("ana", "", "", False)
    assert role_of(ana, local) == "admin"
    assert all(may(ana, local, action) for action in ACTIONS)
    assert require(Identity.typed("anyone"), Roles(), "upload_model") == "admin"
    assert Identity.typed("ana").proof == {"verified": False, "provider": "", "subject": ""}


def test_the_identity_of_st_user():
    ana = signed_in("ana@plant.example")
    assert (ana.email, ana.subject, ana.provider, ana.verified) == ("ana@plant.example", "sub-ana@plant.example",
                                                                    ISSUER, True)
    assert ana.proof == {"verified": True, "provider": ISSUER, "subject": "sub-ana@plant.example"}
    # the [auth] provider's name when the claims carry no issuer
    named = Identity.from_user({"is_logged_in": True, "email": "a@b.example", "sub": "1", "provider": "google"})
    assert named.provider == "google"
    # nobody signed in: AppTest's default user, a signed-out session, claims without an email
    assert Identity.from_user({"email": "test@example.com"}) is None
    assert Identity.from_user({"is_logged_in": False, "email": "ana@plant.example"}) is None
    assert Identity.from_user({"is_logged_in": True, "sub": "1"}) is None
    assert Identity.from_user(None) is None and Identity.from_user({}) is None


def test_an_email_the_provider_does_not_vouch_for_has_no_role():
    unverified = signed_in("ana@plant.example", email_verified=False)
    assert not unverified.verified
    assert role_of(unverified, ROLES) == "viewer"
    with pytest.raises(AccessDenied, match="does not vouch for this email"):
        require(unverified, ROLES, "decide")
    assert signed_in("ana@plant.example", email_verified=True).verified


@pytest.mark.parametrize("section", [{"reviewers": "ana@plant.example"}, {"admins": ["ana"]},
                                     {"reviewers": ["plant.example"]}, {"reviewers": ["ana@"]}])
def test_a_malformed_role_list_is_named(section):
    with pytest.raises(ValueError, match=r"\[aeviz\] (reviewers|admins)"):
        Roles.from_secrets({"auth": {}, "aeviz": section})


def test_secrets_without_a_file_read_as_no_sign_in():
    class NoFile(dict):
        def get(self, key, default=None):
            raise FileNotFoundError("no secrets.toml")

    assert Roles.from_secrets(NoFile()) == Roles()
    assert Roles.from_secrets(None) == Roles()
