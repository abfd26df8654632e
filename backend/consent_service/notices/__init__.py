"""Health notices residents opt into (issue 17, docs/notices.md).

Topics, subscriptions, sealed LINE recipients, staff-approved notices and their sending.
"""
