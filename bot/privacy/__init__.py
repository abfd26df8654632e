"""Personal details taken out of a resident's message before anything stores or logs it."""

from bot.privacy.masking import MARKERS, DetailKind, Masked, mask_personal

__all__ = ["MARKERS", "DetailKind", "Masked", "mask_personal"]
