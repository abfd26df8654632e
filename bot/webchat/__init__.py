"""The resident web chat's page (static/) and what the channel adds to its answers (furigana)."""
