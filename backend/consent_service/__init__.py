"""The consent service of the Funabashi information bank: catalogue, rules, receipts, audit."""
