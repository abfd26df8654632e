"""The staff console (`/staff`): what residents ask, where the assistant fails, how consent goes.

Reads the analytics tables (filled from Rasa's event broker by `consent_service.analytics`, never
Rasa's database) and the consent tables; everything shown is masked and small counts are
suppressed, so no one's health data is exposed.
"""
