"""The staff pages (SPEC §8): dashboard, grant form, member pages, award list, bulk grant,
API keys. Each page is one function view serving the full page and its HTMX fragments.
"""
