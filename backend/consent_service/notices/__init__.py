"""Health notices residents opt into (issue 17): topics, subscriptions, sealed LINE recipients,
staff-approved notices and their sending (docs/notices.md)."""
