"""Staff routes under ``/staff/`` (SPEC §8); the paths are part of the contract."""

from django.urls import path

from staff.views import (
    api_keys,
    audit,
    award_list,
    budgets,
    bulk,
    dashboard,
    governance,
    grant,
    members,
    requests,
    rescore,
    revoke,
)

app_name = "staff"

urlpatterns: list = [
    path("", dashboard.dashboard, name="dashboard"),
    path("awards/", award_list.award_list_view, name="award-list"),
    path("awards/new", grant.award_grant_view, name="award-grant"),
    path("awards/validate", grant.award_grant_validate, name="award-validate"),
    path("awards/preview", grant.award_preview, name="award-preview"),
    path("awards/bulk", bulk.bulk_grant_view, name="award-bulk"),
    path("awards/bulk/<uuid:token>", bulk.bulk_job_view, name="award-bulk-job"),
    path("awards/<int:award_id>/revoke", revoke.award_revoke_view, name="award-revoke"),
    path("members/search", grant.member_search, name="member-search"),
    path("members/<str:username>/", members.member_detail_view, name="member-detail"),
    path("api-keys/", api_keys.api_keys_view, name="api-keys"),
    path("api-keys/<int:key_id>/revoke", api_keys.api_key_revoke_view, name="api-key-revoke"),
    path("rescore/", rescore.rescore_view, name="rescore"),
    path("rescore/<int:job_id>/", rescore.rescore_job_view, name="rescore-job"),
]

# Award governance (SPEC §10): requests above the approval threshold, budgets, audit.
urlpatterns += [
    path("awards/requests/", requests.award_requests_view, name="award-requests"),
    path(
        "awards/requests/<int:request_id>/approve",
        requests.award_request_approve_view,
        name="award-request-approve",
    ),
    path(
        "awards/requests/<int:request_id>/reject",
        requests.award_request_reject_view,
        name="award-request-reject",
    ),
]
urlpatterns += [
    path("governance", governance.governance_panel, name="governance"),
]
urlpatterns += [
    path("awards/budgets/", budgets.budgets_view, name="budgets"),
    path("awards/budgets/<str:username>", budgets.budget_override_view, name="budget-override"),
]
urlpatterns += [
    path("audit/", audit.audit_view, name="audit"),
]
