"""The staff console (`/staff`): what residents ask, where the assistant fails, how consent goes.

Read-only over Rasa's tracker store and the consent tables; everything shown is masked and small
counts are suppressed, so no one's health data is exposed.
"""
