"""The staff console under ``/staff/``: views, forms, page reads, templates and template tags.

It reads and writes through ``awards``, ``members`` and ``scoring``; none of them imports it.
"""
