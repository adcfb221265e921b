"""The staff award list's table rows, built in Python in one pass.

A page is 50 awards of eight cells each; as a template loop (a date filter, a truncation,
two choice displays and a dozen lookups per row) it was most of ``/staff/awards/``'s time.
Every value is escaped with ``escape`` exactly as the template's autoescape did.
"""

from collections.abc import Iterable

from django import template
from django.core.exceptions import ObjectDoesNotExist
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator
from django.utils.timezone import template_localtime

from awards.models import Award
from awards.private_text import award_private_text_visible
from members.templatetags.members_tags import num
from staff.templatetags.staff_extras import award_revoke_url, member_staff_url

register = template.Library()


def _revocation(award: Award):
    try:
        return award.revocation
    except ObjectDoesNotExist:
        return None


def _award_row(award: Award, *, private: bool) -> str:
    revocation = _revocation(award)
    granted = template_localtime(award.granted_at)
    username = award.recipient.username
    points = escape(num(award.points))
    if award.public or private:
        reason = escape(Truncator(award.reason).chars(90))
    else:
        reason = '<span class="muted">(reason hidden)</span>'
    if not award.public:
        reason += ' <span class="badge">private</span>'
    by = (
        escape(award.granted_by.username)
        if award.granted_by_id and award.granted_by
        else '<span class="muted">—</span>'
    )
    quoted = f" · “{escape(award.granted_by_text)}”" if award.granted_by_text else ""
    source = escape(award.get_source_display())
    stamp = escape(award.granted_at.isoformat())
    if revocation is not None:
        revoked_by = (
            f" by {escape(revocation.revoked_by.username)}" if revocation.revoked_by else ""
        )
        revoked_at = template_localtime(revocation.revoked_at)
        status = (
            '<span class="badge badge-revoked">revoked</span> <span class="small">'
            f"{revoked_at:%Y-%m-%d}{revoked_by}: "
            f"{escape(Truncator(revocation.reason).chars(60))}</span>"
        )
        points = f'<span class="revoked">{points}</span>'
    else:
        status = '<span class="badge badge-ok">active</span>'
    return (
        f"<tr{' class="is-revoked"' if revocation is not None else ''}>"
        f'<td class="num">{int(award.pk)}</td>'
        f'<td><time datetime="{stamp}">{granted:%Y-%m-%d %H:%M}</time></td>'
        f'<td><a href="{escape(member_staff_url(username))}">{escape(username)}</a></td>'
        f'<td class="num">{points}</td>'
        f"<td>{reason}</td>"
        f"<td>{escape(award.get_category_display())}</td>"
        f'<td>{by} <span class="small muted">{source}{quoted}</span></td>'
        f"<td>{status}</td>"
        "</tr>\n"
    )


@register.simple_tag
def award_list_rows(awards: Iterable[Award], user) -> SafeString:
    """``{% award_list_rows page.awards request.user %}``: the award list's ``<tr>``s;
    private reasons only for ``awards.view_award`` (asked once for the page)."""
    private = award_private_text_visible(user)
    return mark_safe("".join(_award_row(a, private=private) for a in awards))  # noqa: S308 - every value escaped above


def _history_row(award: Award, *, private: bool, can_revoke: bool) -> str:
    revocation = _revocation(award)
    pk = int(award.pk)
    granted = template_localtime(award.granted_at)
    points = escape(num(award.points))
    reason = (
        escape(award.reason)
        if award.public or private
        else '<span class="muted">(reason hidden)</span>'
    )
    category = escape(award.get_category_display()) + ("" if award.public else " · private")
    note = (
        '<div class="small staff-note"><span class="visually-hidden">Staff note: </span>'
        f"{escape(award.staff_note)}</div>"
        if private and award.staff_note
        else ""
    )
    by = (
        escape(award.granted_by.username)
        if award.granted_by_id and award.granted_by
        else '<span class="muted">—</span>'
    )
    quoted = f" · “{escape(award.granted_by_text)}”" if award.granted_by_text else ""
    if revocation is not None:
        revoked_by = (
            f" by {escape(revocation.revoked_by.username)}" if revocation.revoked_by else ""
        )
        revoked_at = template_localtime(revocation.revoked_at)
        status = (
            '<span class="badge badge-revoked">revoked</span> <div class="small">'
            f"{revoked_at:%Y-%m-%d %H:%M}{revoked_by}: {escape(revocation.reason)}</div>"
        )
        points = f'<span class="revoked">{points}</span>'
    else:
        status = '<span class="badge badge-ok">active</span>'
        if can_revoke:
            url = award_revoke_url(pk)
            # The form loads when the disclosure opens, so a long history stays light.
            status += (
                f' <details class="revoke" hx-get="{url}" hx-trigger="toggle once" '
                f'hx-target="#revoke-form-{pk}" hx-swap="outerHTML"> <summary>Revoke…</summary> '
                f'<div id="revoke-form-{pk}" class="revoke-slot"><a href="{url}">'
                "Open the revoke form</a></div> </details>"
            )
    stamp = escape(award.granted_at.isoformat())
    return (
        f'<tr id="award-{pk}"{' class="is-revoked"' if revocation is not None else ""}>'
        f'<td><time datetime="{stamp}">{granted:%Y-%m-%d %H:%M}</time></td>'
        f'<td class="num">{points}</td>'
        f'<td>{reason} <div class="small muted">{category}</div> {note}</td>'
        f'<td>{by} <div class="small muted">{escape(award.get_source_display())}{quoted}</div></td>'
        f"<td> {status} </td>"
        "</tr>\n"
    )


@register.simple_tag(takes_context=True)
def member_history_rows(context, awards: Iterable[Award]) -> SafeString:
    """``{% member_history_rows history %}``: the staff member page's award history
    ``<tr>``s; private text only for ``awards.view_award`` and the revoke disclosure only for
    ``awards.add_awardrevocation`` (each asked once for the table)."""
    user = context["request"].user
    private = award_private_text_visible(user)
    can_revoke = user.has_perm("awards.add_awardrevocation")
    return mark_safe(  # noqa: S308 - every value escaped above
        "".join(_history_row(a, private=private, can_revoke=can_revoke) for a in awards)
    )
